"""The docs name only what exists: every `make TARGET` is a Makefile target, every repo
path is in the tree, every setting (an UPPER_CASE variable) is read somewhere. Checked in
code (inline `code` and fenced blocks) of every tracked Markdown file. Pure Python."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.tooling import REPO

TRACKED = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
DOCS = [REPO / f for f in TRACKED if f.endswith(".md")]
TARGETS = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
# Files a reader is told to create (not shipped).
CREATED_BY_THE_READER = {"loki/rules/fake/shop.yml"}
# Made by runs, never committed.
GENERATED = ("build/", "twins/images.env", "twins/.cache", "demo_app/wheelhouse")
# Read by upstream code (the OpenTelemetry SDK, Grafana, Go, Docker), not by ours.
UPSTREAM_PREFIXES = ("OTEL_", "GF_", "GO", "DOCKER_", "COMPOSE_")
DEMO_SETTINGS = REPO / "demo_app" / "src" / "demo_app" / "settings.py"


def _code(text: str) -> list[str]:
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, re.DOTALL)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return fenced + re.findall(r"`([^`\n]+)`", prose)


def _settings_read_by_code() -> str:
    """Every tracked non-Markdown file's text, plus the demo's pydantic settings by their
    environment names (DEMO_ + field name; the demo's source is not imported here)."""
    texts = [(REPO / f).read_text(errors="ignore") for f in TRACKED  # not this file: its examples are stale
             if not f.endswith(".md") and (REPO / f).is_file() and (REPO / f).stat().st_size < 1_000_000
             and REPO / f != Path(__file__).resolve()]
    fields = re.findall(r"^    ([a-z]\w*): ", DEMO_SETTINGS.read_text(), re.MULTILINE)
    return "\n".join(texts + ["DEMO_" + f.upper() for f in fields])


def _findings(docs: list[Path]) -> dict[str, list[str]]:
    code_text = _settings_read_by_code()
    found: dict[str, list[str]] = {"make": [], "path": [], "variable": []}
    for doc in docs:
        where = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc.name
        for code in _code(doc.read_text()):
            found["make"] += [f"{where}: make {t}" for t in re.findall(r"(?:^|[\s;(&|])make ([a-z][\w-]*)", code)
                              if t not in TARGETS]
            for token in re.findall(r"(?<![\w./:-])[\w][\w./*<>{}$-]*", code):
                path = token.rstrip(".")
                if "/" not in path or set(path) & set("*<>{}$"):
                    continue  # not a path, or a pattern (exercise-*.yml, <name>.md)
                if (path.startswith(GENERATED) or path in CREATED_BY_THE_READER
                        or not ((REPO / path.split("/")[0]).exists() or (doc.parent / path.split("/")[0]).exists())):
                    continue  # not a path into this repository (a URL part, an image, a container path)
                if not ((REPO / path).exists() or (doc.parent / path).exists()):
                    found["path"].append(f"{where}: {path}")
            for var in re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])\b", code):
                if not var.startswith(UPSTREAM_PREFIXES) and not re.search(rf"\b{var}\b", code_text):
                    found["variable"].append(f"{where}: {var}")
    return found


FINDINGS = _findings(DOCS)


@pytest.mark.parametrize("kind", ["make", "path", "variable"])
def test_the_docs_name_only_what_exists(kind):
    assert not FINDINGS[kind], f"docs name a {kind} the tree does not have: {sorted(set(FINDINGS[kind]))}"


def test_the_check_catches_drift(tmp_path):
    stale = tmp_path / "stale.md"
    stale.write_text("Run `make frobnicate`, edit `scripts/no_such_tool.py`, set `STACK_NO_SUCH_SETTING`;\n"
                     "`make up`, `scripts/validate.py` and `DEMO_MAX_CONNECTIONS` exist.\n")
    assert _findings([stale]) == {"make": ["stale.md: make frobnicate"], "path": ["stale.md: scripts/no_such_tool.py"],
                                  "variable": ["stale.md: STACK_NO_SUCH_SETTING"]}
