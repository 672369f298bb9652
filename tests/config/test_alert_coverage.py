"""Cross-checks no single tool makes: every alert is complete, unit-tested both ways and has a
runbook; every recording rule has a promql_expr_test. Pure Python, no containers."""
from __future__ import annotations

import re

import pytest
import yaml

from tests.config import alert_rules as ar
from tests.tooling import COMPOSE_FILE, REPO

COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())

ALERTS = ar.alerts()


def test_catalogue_is_not_empty():
    assert len(ALERTS) >= 15 and len(ar.recording_rules()) >= 10


def test_rule_names_are_unique():
    names = [r["alert"] for _, _, r in ar.rules() if "alert" in r]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_severity_and_annotations(name):
    rule = ALERTS[name]
    labels, ann = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in ar.SEVERITIES, f"{name}: severity {labels.get('severity')!r}"
    for key in ("summary", "description", "runbook_url"):
        assert ann.get(key, "").strip(), f"{name}: annotation {key} missing"
    # One setting says where runbooks live (prometheus.yml's external label runbook_base);
    # the alert sink serves docs/runbooks/<name>.md at /runbooks/<name>.
    assert ann["runbook_url"] == f"{{{{ $externalLabels.runbook_base }}}}/runbooks/{name}", ann["runbook_url"]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_a_runbook(name):
    page = ar.RUNBOOKS / f"{name}.md"
    assert page.is_file(), f"{name} has no runbook: create {page.relative_to(REPO)}"
    text = page.read_text()
    assert text.startswith(f"# {name}\n"), f"{page.name} must start with '# {name}'"
    for section in ("## Meaning", "## Diagnose", "## Fix"):
        assert section in text, f"{page.name} lacks a {section!r} section"


def test_no_orphan_runbooks():
    orphans = {p.stem for p in ar.RUNBOOKS.glob("*.md")} - set(ALERTS)
    assert not orphans, f"runbooks for alerts that do not exist: {sorted(orphans)}"


def _alert_cases():
    """alertname -> (firing test cases, quiet test cases) over every promtool test file."""
    cases: dict[str, tuple[list, list]] = {}
    for f, test in ar.unit_tests():
        for case in test.get("alert_rule_test") or []:
            fired, quiet = cases.setdefault(case["alertname"], ([], []))
            (fired if case.get("exp_alerts") else quiet).append((f.name, test.get("name")))
    return cases


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_firing_and_quiet_unit_tests(name):
    fired, quiet = _alert_cases().get(name, ([], []))
    assert fired, f"{name}: no promtool test case in prometheus/tests/ makes it fire"
    if name not in ar.ALWAYS_FIRING:
        assert quiet, f"{name}: no promtool test case shows it quiet (exp_alerts: [])"


@pytest.mark.parametrize("name", sorted(set(ALERTS) - set(ar.ALWAYS_FIRING)))
def test_alert_is_quiet_in_a_healthy_test(name):
    """The quiet case must include one in a test named 'healthy ...' (realistic input)."""
    healthy = [t for _, t in ar.unit_tests() if t.get("name", "").startswith("healthy")]
    assert any(c["alertname"] == name and c.get("exp_alerts") == []
               for t in healthy for c in t.get("alert_rule_test") or []), (
        f"{name} is not in a 'healthy ...' promtool test with exp_alerts: []")


def test_unit_tests_name_only_existing_alerts():
    unknown = set(_alert_cases()) - set(ALERTS)
    assert not unknown, f"promtool tests refer to alerts that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize("record", ar.recording_rules())
def test_recording_rule_has_promql_expr_test(record):
    exprs = [c["expr"] for _, t in ar.unit_tests() for c in t.get("promql_expr_test") or []]
    pattern = re.compile(rf"(?<![\w:]){re.escape(record)}(?![\w:])")
    assert any(pattern.search(e) for e in exprs), f"{record}: no promql_expr_test uses it"


@pytest.mark.parametrize("name", sorted(set(ALERTS) - ar.ALWAYS_FIRING))
def test_firing_tests_carry_a_service_label(name):
    """Alertmanager groups by service and inhibits per service: every alert needs one."""
    for _, t in ar.unit_tests():
        for case in t.get("alert_rule_test") or []:
            if case["alertname"] == name:
                for exp in case.get("exp_alerts") or []:
                    assert exp["exp_labels"].get("service"), f"{name}: no service label in {exp}"


def test_every_rule_file_is_covered_by_a_test_file():
    loaded = set()
    for f in ar.unit_test_files():
        for rf in yaml.safe_load(f.read_text())["rule_files"]:
            loaded.add((f.parent / rf).resolve())
    missing = {f.name for f in ar.rule_files()} - {p.name for p in loaded}
    assert not missing, f"rule files no promtool test loads: {sorted(missing)}"


def test_conventions_list_every_alert():
    text = (REPO / "docs" / "conventions.md").read_text()
    assert "## Alerts" in text, "docs/conventions.md has no 'Alerts' section"
    section = text.split("## Alerts", 1)[1]
    missing = [n for n in ALERTS if f"`{n}`" not in section]
    assert not missing, f"docs/conventions.md 'Alerts' section misses {missing}"


def test_runbook_links_follow_one_setting_to_the_alert_sink():
    """prometheus.yml takes runbook_base from RUNBOOK_BASE_URL, whose default in compose is
    the alert sink's published port, and drops the label from the alerts it sends."""
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert prom["global"]["external_labels"]["runbook_base"] == "${RUNBOOK_BASE_URL}"
    assert {"action": "labeldrop", "regex": "runbook_base"} in prom["alerting"]["alert_relabel_configs"]
    default = COMPOSE["services"]["prometheus"]["environment"]["RUNBOOK_BASE_URL"]
    sink_port = next(int(p.rsplit(":", 1)[1]) for p in COMPOSE["services"]["alert-sink"]["ports"])
    assert default.startswith("${RUNBOOK_BASE_URL:-") and default.endswith(f":{sink_port}}}"), default
