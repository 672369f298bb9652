"""The drill profile: generated from the main configs without drift, valid for the real
tools, and fast enough that each drill's alerts can fire within about a minute."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from tests.config import alert_rules as ar
from tests.tooling import REPO, run_tool

from drills import catalogue, drill
from scripts import profiles


@pytest.mark.parametrize("main,drill_file,gen", profiles.PAIRS, ids=[str(out.relative_to(REPO)) for _, out, _ in profiles.PAIRS])
def test_drill_file_is_generated_from_main(main, drill_file, gen):
    assert drill_file.read_text() == gen(main.read_text()), (
        f"{drill_file.relative_to(REPO)} is stale: run `python3 scripts/profiles.py`")


def test_prometheus_drill_shares_rules_and_targets():
    main = yaml.safe_load(profiles.PROM_MAIN.read_text())
    drill_cfg = yaml.safe_load(profiles.PROM_DRILL.read_text())
    for key in ("rule_files", "scrape_config_files", "alerting"):
        assert drill_cfg.get(key) == main.get(key), key
    assert drill_cfg["global"]["scrape_interval"] == "5s"
    assert drill_cfg["global"]["evaluation_interval"] == "5s"


def test_included_scrape_jobs_follow_the_global_interval():
    """Jobs with their own scrape_interval would not speed up in the drill profile."""
    main = yaml.safe_load(profiles.PROM_MAIN.read_text())
    for name in main.get("scrape_config_files") or []:
        for path in (REPO / "prometheus").glob(name):
            for job in yaml.safe_load(path.read_text()).get("scrape_configs") or []:
                assert "scrape_interval" not in job, f"{path.name}: job {job['job_name']}"


def test_promtool_accepts_the_drill_profile():
    p = run_tool("PROMETHEUS_IMAGE", "promtool", "check", "config",
                 "/etc/prometheus/prometheus.drill.yml",
                 mounts={REPO / "prometheus": "/etc/prometheus"})
    assert p.returncode == 0, p.stdout + p.stderr


def test_generator_check_mode_reports_drift(tmp_path, monkeypatch):
    stale = tmp_path / "alertmanager.drill.yml"
    stale.write_text("route: {}\n")
    monkeypatch.setattr(profiles, "PAIRS", ((profiles.AM_MAIN, stale, profiles.alertmanager_drill),))
    assert profiles.main(["--check"]) == 1


def _seconds(d: str) -> int:
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", d))


def test_issue_scenarios_exist():
    assert {"errors", "latency", "inventory-outage", "loadgen-stopped"} <= set(drill.SCENARIOS)
    assert any(s.stop and s.stop[0] in ("otel-collector", "loki") for s in drill.SCENARIOS.values())


@pytest.mark.parametrize("name", sorted(drill.SCENARIOS))
def test_drill_alerts_exist_and_fire_fast(name):
    """Every expected alert exists, and its `for:` plus its rate window leave it room to fire
    within about a minute of the fault with 5s scrapes and evaluations (a fault on top of
    `make history` has the history for its long windows)."""
    alerts = ar.alerts()
    for exp in drill.SCENARIOS[name].expect:
        rule = alerts.get(exp.alertname)
        assert rule, f"drill {name} expects unknown alert {exp.alertname}"
        if drill.SCENARIOS[name].history:
            continue
        assert _seconds(rule.get("for", "0s")) <= 30, f"{exp.alertname}: for: too long for a drill"
        # The windows its rates are computed over (a start-up grace's lookback is not one).
        windows = [_seconds(w) for w in re.findall(r"(?:rate|increase)\([^\[]*\[(\d+[smh])\]", rule["expr"])]
        assert all(w <= 120 for w in windows), f"{exp.alertname}: a {max(windows)}s rate window"


def test_drill_cli_lists_scenarios():
    p = subprocess.run([sys.executable, str(REPO / "drills" / "drill.py"), "--list"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    for name in drill.SCENARIOS:
        assert name in p.stdout


def test_conventions_alerts_table_is_the_catalogue():
    """docs/conventions.md's "drill that fires it" column names exactly the catalogue's
    faults that expect each alert (drills/catalogue.py is the one place)."""
    want: dict[str, set[str]] = {}
    for fault in catalogue.FAULTS.values():
        for exp in fault.expect:
            want.setdefault(exp.alertname, set()).add(fault.name)
    table = (REPO / "docs" / "conventions.md").read_text().split("## Alerts", 1)[1]
    got = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) >= 4 else None
        if m:
            got[m.group(1)] = set(re.findall(r"`([\w-]+)`", cells[-1])) & set(catalogue.FAULTS)
    for alert in set(got) | set(want):
        assert got.get(alert, set()) == want.get(alert, set()), (
            f"{alert}: conventions.md names drills {sorted(got.get(alert, set()))}, "
            f"the catalogue {sorted(want.get(alert, set()))}")


def test_conventions_document_every_drill():
    text = (REPO / "docs" / "conventions.md").read_text().split("## Alerts", 1)[-1]
    guide = (REPO / "docs" / "alert-training.md").read_text()
    for name in drill.SCENARIOS:
        assert f"`{name}`" in text, f"docs/conventions.md 'Alerts' misses drill {name}"
        assert f"`{name}`" in guide, f"docs/alert-training.md misses drill {name}"


class FakeTarget:
    """API answers shaped like the real ones (drills/target.py)."""

    def __init__(self, prom, am, sink):
        self.prometheus_alerts = lambda: prom
        self.alertmanager_alerts = lambda: am
        self.sink_alerts = lambda name, status: sink.get(name, [])


def test_drill_report_verdicts(monkeypatch, capsys):
    """The drill's bookkeeping, fed with API answers shaped like the real ones: one alert
    reaches the sink, one is inhibited (named by its inhibitor), one never shows up."""
    burn = {"alertname": "DemoErrorBudgetBurnFast", "service": "inventory", "severity": "critical"}
    ready = {"alertname": "DemoReadinessFailing", "service": "inventory", "severity": "warning"}
    target = FakeTarget(
        [{"labels": burn, "state": "firing"}, {"labels": ready, "state": "pending"}],
        [{"labels": burn, "fingerprint": "f1", "status": {"state": "active", "inhibitedBy": []}},
         {"labels": ready, "fingerprint": "f2", "status": {"state": "suppressed", "inhibitedBy": ["f1"]}}],
        {burn["alertname"]: [{"labels": burn, "received_at": "2999-01-01T00:00:00+00:00"}]})
    monkeypatch.setattr(drill.time, "sleep", lambda s: None)
    scenario = catalogue.Fault("x", "test", expect=(
        catalogue.Expect(burn["alertname"], {"service": "inventory"}),
        catalogue.Expect(ready["alertname"], {"service": "inventory"}),
        catalogue.Expect("DemoNoTraffic", {"service": "shop"})))
    timelines = [drill.Timeline(e) for e in scenario.expect]
    drill.wait_for(target, timelines, drill.time.monotonic(), drill.time.time(), timeout=0)
    assert not drill.report(scenario, timelines, resolve=False)
    out = capsys.readouterr().out
    assert "reached the sink" in out
    assert 'inhibited in Alertmanager by DemoErrorBudgetBurnFast{service="inventory"}' in out
    assert "MISSING" in out and "FAIL" in out
