"""`make history` on a fresh stack: a month of the demo's series with planted incidents,
generated in bounded memory and loaded by upstream's tools; the recording rules cover the
month (the 30-day SLO panels have data); the shipped rules backtested over it (each alert
catches its planted incident or the catalogue says why none exists, none pages outside
the incidents more than once a week; the table for docs/backtest.md); four rules of known
behaviour scored as expected; the grader's backtest stage; the slow burn-rate alert, which
needs days of data, drilled end to end (DemoErrorBudgetBurnSlow reaches the alert sink on a
history ending in a burning day); and a backfill killed midway leaves Prometheus running."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time

import pytest

from drills import backtest, catalogue, history, scorecard
from tests.e2e import clients
from tests.e2e import stack as st
from tests.tooling import REPO

from .conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.signal("history")]
DAYS = 30
SHIPPED_JSON = REPO / "build" / "backtest-shipped.json"
# Memory the loader may use for a month (the generator's peak: ~150 MiB; it held the whole
# month before, ~0.8 GiB).
PEAK_MIB = 512


@pytest.fixture(scope="module")
def manifest(fresh: st.Stack) -> dict:
    """`make history` as a user runs it: its own process, so the peak memory it reports
    is the loader's own."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, str(REPO / "drills" / "history.py"), "--days", str(DAYS), "--seed", "7",
                    "--ending", "burning", "--", *fresh.compose_cmd], cwd=REPO, check=True, timeout=1800)
    fresh.refresh_endpoints()
    m = json.loads(history.MANIFEST.read_text())
    t = m["timings"]
    FIGURES[f"make history DAYS={DAYS}"] = (
        f"{m['samples']:,} samples: generated and written into blocks in {t['blocks_s']} s, "
        f"recording rules {t['rules_s']} s, {m['blocks']} blocks and {t['total_s']} s in all ({time.monotonic() - t0:.0f} s with the "
        f"interpreter's start); loader peak memory {t['peak_rss_mib']} MiB")
    return m


@pytest.fixture(scope="module")
def prometheus(fresh: st.Stack, manifest: dict) -> backtest.Prometheus:
    return backtest.Prometheus.of(fresh.target)


def test_the_same_seed_gives_the_same_history(tmp_path) -> None:
    end = 1_790_000_000

    def written(seed: int, name: str) -> dict:
        history.main(["--days", "4", "--seed", str(seed), "--end", str(end), "--write-only", str(tmp_path / name)])
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / name).iterdir())}

    a = written(5, "a")
    assert len(a) >= 2, "4 days are more than one 54-hour slice"
    assert a == written(5, "b")
    assert a != written(6, "c")


def test_the_loader_runs_in_bounded_memory(manifest: dict) -> None:
    assert manifest["timings"]["peak_rss_mib"] < PEAK_MIB, manifest["timings"]


def test_the_month_is_there_with_its_recording_rules(fresh: st.Stack, manifest: dict) -> None:
    def at(expr: str, days_ago: float) -> list:
        return clients.prom_query(expr, time=manifest["end"] - days_ago * 86400)

    for days_ago in (1, 15, 28):
        assert at('up{job="shop"}', days_ago), f"no scraped sample {days_ago} days back"
        assert at("service:demo_http_error_ratio:rate1d", days_ago), f"no recording rule {days_ago} days back"
    # The 30-day SLO: the error budget spent over the month, from the backfilled ratio
    # (5-minute windows without traffic give 0/0 = NaN; `>= 0` leaves them out, as Grafana does).
    spent = clients.prom_query('avg_over_time((service:demo_http_error_ratio:rate5m{service="shop"} >= 0)[30d:5m])')
    assert spent and 0 < float(spent[0]["value"][1]) < 0.01, spent


def test_the_shipped_rules_backtested_catch_their_incidents_and_page_nothing_else(
        fresh: st.Stack, manifest: dict, prometheus: backtest.Prometheus) -> None:
    rule_files = sorted((REPO / "prometheus" / "rules").glob("*.yml"))
    rules = backtest.alerting_rules(rule_files)
    result = backtest.backtest(rules, manifest, prometheus, backtest.seconds(fresh.target.evaluation_interval() or "15s"))
    result.update({"rule_files": [str(p.relative_to(REPO)) for p in rule_files], "provenance": backtest.provenance(),
                   "history_s": manifest["timings"]["total_s"]})
    backtest.print_report(result)
    SHIPPED_JSON.write_text(json.dumps(result, indent=2) + "\n")
    backtest.plot(result, SHIPPED_JSON.with_suffix(".png"))
    FIGURES[f"shipped rules backtested over {DAYS} days"] = (
        f"{len(rules)} alerting rules in {result['seconds']} s at a {result['step_s']:g} s step: recall "
        f"{result['recall']}, false pages {len(result['false_pages'])}; " + ", ".join(
            f"{a['alert']} {a['caught']}/{a['should_catch']} p={a['precision']}" for a in result["alerts"]))
    by_alert = {a["alert"]: a for a in result["alerts"]}
    for rule in rules:
        a = by_alert.get(rule.alert)
        if rule.alert in catalogue.NO_PLANTED_INCIDENT:
            continue
        assert a and a["should_catch"], f"{rule.alert}: no planted incident expects it, and the catalogue says not why"
        assert a["caught"] == a["should_catch"], f"{rule.alert} misses a planted incident: {a}"
    noisy = {n: a["false_per_week"] for n, a in by_alert.items() if a["false_per_week"] > backtest.NOISY_PER_WEEK}
    assert not noisy, f"pages outside the incidents more than once a week: {noisy}; {result['false_pages']}"
    # The score card's history mode is this backtest.
    assert scorecard.score_history(manifest, fresh.target)["recall"] == result["recall"] == 1.0


def test_make_backtest_reuses_the_loaded_month_and_writes_its_figures(fresh: st.Stack, manifest: dict,
                                                                     tmp_path, capsys) -> None:
    out = tmp_path / "backtest.json"
    assert backtest.main([str(REPO / "prometheus" / "rules" / "demo-alerts.yml"), "--days", str(DAYS),
                          "--out", str(out), "--", *fresh.compose_cmd]) == 0
    printed = capsys.readouterr().out
    assert "loading" not in printed, "the month was loaded again"
    result = json.loads(out.read_text())
    assert result["start"] == manifest["start"] and result["provenance"]["prometheus_image"], result.keys()
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert "DemoHighLatencyP95" in printed and "precision" in printed


FOUR = {  # DemoHighLatencyP95 four ways: the planted latency regression lasts 90 minutes
    "reference": None,  # the shipped rule
    "noisy": 'service_quantile:demo_http_request_duration_seconds:rate1m{quantile="0.95"} > 0.001',
    "deaf": 'service_quantile:demo_http_request_duration_seconds:rate1m{quantile="0.95"} > 60',
    "late": 'service_quantile:demo_http_request_duration_seconds:rate1m{quantile="0.95"} > 0.5',
}


def test_four_rules_of_known_behaviour_score_as_expected(fresh: st.Stack, manifest: dict,
                                                         prometheus: backtest.Prometheus, tmp_path) -> None:
    step = backtest.seconds(fresh.target.evaluation_interval() or "15s")
    shipped = next(r for r in backtest.alerting_rules([REPO / "prometheus" / "rules" / "demo-alerts.yml"])
                   if r.alert == "DemoHighLatencyP95")
    scored = {}
    for name, expr in FOUR.items():
        rule = shipped if expr is None else backtest.Rule("DemoHighLatencyP95", expr, 1800 if name == "late" else 10)
        result = backtest.backtest([rule], manifest, prometheus, step)
        scored[name] = next(a for a in result["alerts"] if a["alert"] == "DemoHighLatencyP95")
    FIGURES["four rules"] = "; ".join(f"{n}: {a['pages']} pages, caught {a['caught']}/{a['should_catch']}, "
                                      f"precision {a['precision']}, detect {a['detect_s_median']} s, {a['verdict']}"
                                      for n, a in scored.items())
    ref, noisy, deaf, late = (scored[n] for n in FOUR)
    assert (ref["caught"], ref["false_pages"], ref["verdict"]) == (1, 0, "ok"), ref
    assert noisy["precision"] < 0.2 and "noisy" in noisy["verdict"], noisy
    assert (deaf["pages"], deaf["caught"], deaf["verdict"]) == (0, 0, "deaf"), deaf
    assert late["caught"] == 1, late
    assert 25 * 60 <= late["detect_s_median"] - ref["detect_s_median"] <= 40 * 60, (late, ref)


def test_the_grader_backtests_a_learners_rule(fresh: st.Stack, manifest: dict, monkeypatch, tmp_path) -> None:
    from exercises.grader import grade

    monkeypatch.setenv("DRILL_PROMETHEUS_URL", fresh.target.url("prometheus"))
    from tests.exercises.answers import reference

    ex = grade.find(3)
    answer = reference(ex.slug).write(tmp_path / "reference")
    ok = [r for r in grade.grade_file(ex, answer).results if r.stage == "backtest"]
    assert [r.status for r in ok] == ["PASS", "PASS"], ok
    assert "shipped DemoHighLatencyP95" in ok[0].criterion
    deaf = tmp_path / "rules.yml"  # the reference with a threshold no incident reaches
    deaf.write_text(answer.read_text().replace("> 0.5", "> 60"))
    missed = [r for r in grade.grade_file(ex, deaf).results if r.stage == "backtest"]
    assert missed[0].status == "FAIL" and "latency-regression" in missed[0].hint, missed


def test_a_burning_history_pages_the_slow_burn_at_the_sink(fresh: st.Stack, manifest: dict) -> None:
    """The slow burn-rate alert needs a day of data; on a history whose last day burned,
    it is evaluated by the live rules and delivered like any page."""
    t0, deadline = time.monotonic(), time.monotonic() + 600
    while not (at_sink := fresh.target.sink_alerts("DemoErrorBudgetBurnSlow", status="firing")):
        assert time.monotonic() < deadline, "DemoErrorBudgetBurnSlow did not reach the sink within 10 minutes"
        time.sleep(5)
    FIGURES["burning history -> DemoErrorBudgetBurnSlow at the sink"] = f"{time.monotonic() - t0:.0f} s after the load"
    assert {a["labels"].get("service") for a in at_sink} == {"shop"}, at_sink


def test_a_backfill_killed_midway_leaves_prometheus_running_and_nothing_half_loaded(
        fresh: st.Stack, manifest: dict) -> None:
    """Last: SIGTERM while the slices are being written; the loader removes its staging
    folder and Prometheus, never stopped, keeps running with the month it had."""
    proc = subprocess.Popen([sys.executable, str(REPO / "drills" / "history.py"), "--days", "6", "--seed", "3",
                             "--", *fresh.compose_cmd], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if "slice 2 " in line:  # the first block is being written
                proc.send_signal(signal.SIGTERM)
                break
        rest, _ = proc.communicate(timeout=300)
        out.append(rest)
    finally:
        proc.kill()
    text = "".join(out)
    assert proc.returncode != 0 and "removing what was written" in text, text[-3000:]
    prom = fresh.containers()["prometheus"]
    assert prom["State"] == "running", prom
    listing = fresh.compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "ls", "prometheus", "/prometheus").stdout
    assert "history-staging" not in listing, listing
    fresh.refresh_endpoints()
    assert clients.prom_query('up{job="shop"}', time=manifest["end"] - 15 * 86400), "the month is gone"
    # Nothing older than the month was added: the killed load's 6 days would end where the month starts.
    assert not clients.prom_query('up{job="shop"}', time=manifest["start"] - 86400)
