"""Shared readers for the alert-rule tests: the rule catalogue and its promtool unit tests."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml

from tests.tooling import REPO

RULES_DIR = REPO / "prometheus" / "rules"
TESTS_DIR = REPO / "prometheus" / "tests"
RUNBOOKS = REPO / "docs" / "runbooks"
SEVERITIES = {"critical", "warning", "none"}
# Always firing by design: it has no "quiet on healthy input" test.
ALWAYS_FIRING = {"Watchdog"}


@functools.cache
def rule_files() -> tuple[Path, ...]:
    # exercise-*.yml: a learner's rule, there only while `make grade LIVE=1` runs (gitignored).
    return tuple(p for p in sorted(RULES_DIR.glob("*.yml")) if not p.name.startswith("exercise-"))


@functools.cache
def rules() -> tuple[tuple[Path, str, dict], ...]:
    """(file, group name, rule) for every rule."""
    out = []
    for f in rule_files():
        for g in yaml.safe_load(f.read_text())["groups"]:
            out += [(f, g["name"], r) for r in g["rules"]]
    return tuple(out)


def alerts() -> dict[str, dict]:
    return {r["alert"]: r for _, _, r in rules() if "alert" in r}


def recording_rules() -> list[str]:
    return sorted({r["record"] for _, _, r in rules() if "record" in r})


@functools.cache
def unit_test_files() -> tuple[Path, ...]:
    return tuple(sorted(TESTS_DIR.glob("*.test.yml")))


@functools.cache
def unit_tests() -> tuple[tuple[Path, dict], ...]:
    return tuple((f, t) for f in unit_test_files() for t in yaml.safe_load(f.read_text())["tests"])
