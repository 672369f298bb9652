"""promtool on the rule catalogue: the rules load, their unit tests pass, and the unit tests
are not vacuous (a rule changed behind their back makes them fail)."""
from __future__ import annotations

import shutil

from tests.config import alert_rules as ar
from tests.tooling import REPO, run_tool


def _promtool(root, *args: str):
    return run_tool("PROMETHEUS_IMAGE", "sh", "-c", "cd /etc/prometheus && promtool \"$@\"", "promtool",
                    *args, mounts={root: "/etc/prometheus"})


def test_promtool_check_rules():
    files = [f"rules/{f.name}" for f in ar.rule_files()]
    p = _promtool(REPO / "prometheus", "check", "rules", *files)
    assert p.returncode == 0, p.stdout + p.stderr


def test_promtool_test_rules():
    files = [f"tests/{f.name}" for f in ar.unit_test_files()]
    assert files, "no promtool unit tests in prometheus/tests/"
    p = _promtool(REPO / "prometheus", "test", "rules", *files)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("SUCCESS") == len(files), p.stdout


def test_unit_tests_catch_a_changed_threshold(tmp_path):
    """Loosen the fast-burn threshold: the healthy test must now see it fire."""
    root = tmp_path / "prometheus"
    shutil.copytree(REPO / "prometheus", root)
    rules = root / "rules" / "demo-alerts.yml"
    text = rules.read_text()
    assert "(14.4 * 0.001)" in text
    rules.write_text(text.replace("(14.4 * 0.001)", "(0.1 * 0.001)"))
    p = _promtool(root, "test", "rules", "tests/demo-alerts.test.yml")
    assert p.returncode != 0 and "DemoErrorBudgetBurnFast" in p.stdout + p.stderr, p.stdout


def test_unit_tests_catch_a_changed_annotation(tmp_path):
    root = tmp_path / "prometheus"
    shutil.copytree(REPO / "prometheus", root)
    rules = root / "rules" / "stack-alerts.yml"
    rules.write_text(rules.read_text().replace("/runbooks/TargetDown'", "/runbooks/Other'"))
    p = _promtool(root, "test", "rules", "tests/stack-alerts.test.yml")
    assert p.returncode != 0 and "TargetDown" in p.stdout + p.stderr, p.stdout
