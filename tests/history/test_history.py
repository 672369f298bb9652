"""`make history` on a fresh stack: a month of the demo's series with planted incidents,
generated and loaded by upstream's tools; every incident's alert would have paged (the
rules evaluated over the history); the recording rules cover the month (the 30-day SLO
panels have data); and the slow burn-rate alert, which needs days of data, is drilled end
to end: on a history ending in a burning day, DemoErrorBudgetBurnSlow reaches the alert
sink."""
from __future__ import annotations

import time

import pytest

from drills import history, scorecard
from tests.e2e import clients
from tests.e2e import stack as st

from .conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.signal("history")]
DAYS = 30


@pytest.fixture(scope="module")
def manifest(fresh: st.Stack) -> dict:
    m = history.load(fresh.compose_cmd, DAYS, seed=7, ending="burning")
    fresh.refresh_endpoints()
    FIGURES[f"{DAYS} days generated and loaded"] = (f"{m['samples']:,} samples: written {m['timings']['generate_s']} s, "
                                                    f"blocks {m['timings']['blocks_s']} s, recording rules "
                                                    f"{m['timings']['rules_s']} s, {m['timings']['total_s']} s in all")
    return m


def test_the_same_seed_gives_the_same_history(tmp_path) -> None:
    end = 1_790_000_000
    a, b = tmp_path / "a.om", tmp_path / "b.om"
    for out in (a, b):
        history.main(["--days", "2", "--seed", "5", "--end", str(end), "--write-only", str(out)])
    assert a.read_bytes() == b.read_bytes()
    history.main(["--days", "2", "--seed", "6", "--end", str(end), "--write-only", str(b)])
    assert a.read_bytes() != b.read_bytes()


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


def test_every_planted_incident_would_have_paged(fresh: st.Stack, manifest: dict) -> None:
    result = scorecard.score_history(manifest, fresh.target)
    scorecard.print_table(result)
    FIGURES["planted incidents"] = ", ".join(f"{r['fault']}/{r['alert'].split('{')[0]} {r['verdict']}"
                                             f" after {r['detect_s']} s" for r in result["rows"])
    assert result["recall"] == 1.0, result["rows"]


def test_a_burning_history_pages_the_slow_burn_at_the_sink(fresh: st.Stack, manifest: dict) -> None:
    """The slow burn-rate alert needs a day of data; on a history whose last day burned,
    it is evaluated by the live rules and delivered like any page."""
    t0, deadline = time.monotonic(), time.monotonic() + 600
    while not (at_sink := fresh.target.sink_alerts("DemoErrorBudgetBurnSlow", status="firing")):
        assert time.monotonic() < deadline, "DemoErrorBudgetBurnSlow did not reach the sink within 10 minutes"
        time.sleep(5)
    FIGURES["burning history -> DemoErrorBudgetBurnSlow at the sink"] = f"{time.monotonic() - t0:.0f} s after the load"
    assert {a["labels"].get("service") for a in at_sink} == {"shop"}, at_sink
