"""A healthy stack pages nothing (planned restarts included); a seeded run of four faults
from the catalogue scores recall 1.0 and no false page (drills/chaos.py, drills/scorecard.py).
Fault-to-page times go to the summary; the budget (30 s in the drill profile) is a figure,
not an assertion."""
from __future__ import annotations

import shutil
import time
from datetime import datetime

import pytest

from drills import backtest, chaos, scorecard
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

from .conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.signal("training")]
QUIET_S = 150  # the demo's load for this long, alerts evaluated every 5 s: nothing may page
FOUR = ["errors", "latency", "inventory-outage", "collector-down"]


def absent(ground: st.Stack) -> tuple:
    """Services this machine could not start (their images are missing): that they page
    as down is right, and says nothing about the alert set."""
    return tuple(ground.plan.missing)


def pages_since(ground: st.Stack, since: float) -> list[str]:
    return [backtest.describe(p) for p in scorecard.pages(scorecard.notifications(ground.target, since, absent(ground)))]


def test_a_healthy_stack_pages_nothing(ground: st.Stack) -> None:
    since = time.time() - 600  # everything since the stack came up
    poll_until(lambda: ground.target.sink_alerts("Watchdog", "firing"), 120, "the Watchdog reaches the sink")
    time.sleep(max(0.0, QUIET_S - (time.time() - ground.up_at)))
    quiet = pages_since(ground, since)
    FIGURES["healthy stack under the demo load"] = f"{QUIET_S} s, pages: {len(quiet)}"
    assert not quiet, f"a healthy stack paged: {quiet}"


def wait_out_every_for(ground: st.Stack) -> float:
    """Waits until nothing a restart set off can still page: at least the longest `for:` of
    the rules that can fire here (those of the running services), and while an alert is
    pending, until it fires or leaves. Seconds waited."""
    t0 = time.time()
    missing = absent(ground)

    def rules() -> list[dict]:
        return [r for g in ground.target.get_json("prometheus", "/api/v1/rules")["data"]["groups"]
                for r in g["rules"] if r["type"] == "alerting"]

    running = ground.running()
    longest = max(r["duration"] for r in rules() if r["labels"].get("service", "") in running | {""})
    until = t0 + longest + 30  # + evaluations and Alertmanager's group_wait
    while True:
        pending = [a for r in rules() for a in r.get("alerts", [])
                   if a["state"] == "pending" and a["labels"].get("service") not in missing]
        for a in pending:
            active = datetime.fromisoformat(a["activeAt"].replace("Z", "+00:00")).timestamp()
            duration = next(r["duration"] for r in rules() if r["name"] == a["labels"]["alertname"])
            until = max(until, active + duration + 30)
        if time.time() >= until and not pending:
            return time.time() - t0
        time.sleep(5)


def test_planned_restarts_page_nothing(ground: st.Stack) -> None:
    since = time.time()
    restarted = [s for s in ("prometheus", "alertmanager", "jaeger", "otel-collector", "loki", "alert-sink")
                 if s in ground.running()]
    for service in restarted:
        ground.target.compose("restart", service)  # the target reads the new host ports again
    waited = wait_out_every_for(ground)
    pages = pages_since(ground, since)
    FIGURES["planned restarts"] = f"{', '.join(restarted)}: pages {len(pages)} in the {waited:.0f} s after"
    assert not pages, f"restarting {restarted} paged: {pages}"


def test_a_seeded_chaos_run_scores_full_recall_and_no_false_page(ground: st.Stack, tmp_path) -> None:
    log = tmp_path / "chaos.json"
    record = chaos.run(ground.target, seed=3, minutes=30, names=FOUR, log=log, gap_s=(20, 40),
                       extra_hold_s=(5, 15), count=len(FOUR))
    assert sorted(w["fault"] for w in record["windows"]) == sorted(FOUR), record["windows"]
    time.sleep(30)  # pages of the last window within its grace
    result = scorecard.score_chaos(record, scorecard.notifications(ground.target, record["started"], absent(ground)),
                                   grace=120)
    scorecard.print_table(result)
    FIGURES["seeded chaos run (seed 3)"] = (
        f"recall {result['recall']}, false pages {len(result['false_pages'])}, flaps {result['flaps']}; "
        "fault -> page: " + ", ".join(f"{r['incident']}/{r['alert'].split('{')[0]} {r['detect_s']} s"
                                      for r in result["rows"] if r["detect_s"] is not None))
    assert result["recall"] == 1.0, result["rows"]
    assert not result["false_pages"], result


LOOKBACK_S = 120


def test_a_recorded_drill_is_a_promtool_test_that_catches_a_raised_threshold(ground: st.Stack, tmp_path,
                                                                             monkeypatch) -> None:
    """`make record-drill` after a live latency drill: its file passes `promtool test rules`
    on the rules as they are, and fails once the alert's threshold is raised above what
    happened."""
    from drills import drill, record
    from drills.catalogue import FAULTS
    from tests.tooling import REPO

    poll_until(lambda: not [a for a in ground.target.prometheus_alerts()
                               if a["labels"]["alertname"] == "DemoHighLatencyP95"], 240,
                  "the chaos run's latency alert is gone")
    # The recorded window (LOOKBACK_S before the fault) must hold no earlier fault: the
    # recorder writes "quiet before the fault" for it.
    time.sleep(LOOKBACK_S + 30)
    monkeypatch.setattr(drill, "LOG_DIR", tmp_path)
    monkeypatch.setattr(record, "LOG_DIR", tmp_path)
    try:
        drill.run(ground.target, FAULTS["latency"], timeout=120, resolve=False)
    finally:
        ground.target.reset()
    rules = tmp_path / "prometheus"
    shutil.copytree(REPO / "prometheus", rules)
    out = record.record(ground.target, "latency", rules / "tests" / "drill-latency.test.yml", LOOKBACK_S, 5)
    passed = record.promtool(out, rules)
    FIGURES["recorded drill"] = f"{out.name}: {len(out.read_text().splitlines())} lines, promtool rc {passed.returncode}"
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-2000:]
    alerts = rules / "rules" / "demo-alerts.yml"
    raised = alerts.read_text().replace('{quantile="0.95"} > 0.5', '{quantile="0.95"} > 5')
    assert raised != alerts.read_text()
    alerts.write_text(raised)
    failed = record.promtool(out, rules)
    assert failed.returncode != 0 and "DemoHighLatencyP95" in failed.stdout + failed.stderr, failed.stdout[-2000:]
