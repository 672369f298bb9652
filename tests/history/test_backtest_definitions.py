"""The backtest's two halves without a stack: the rule manager's states (for,
keep_firing_for) turned into pages, and the score card's definitions (precision, false
pages outside the incidents, noisy, deaf), shared by backtests and chaos runs."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from drills import backtest, scorecard
from drills.backtest import Page, Window, episodes
from drills.catalogue import Expect

STEP = 15.0


def ts(*spans: tuple[int, int]) -> list[float]:
    """Evaluation times (in steps) at which the expression returned the element."""
    return [float(i * STEP) for a, b in spans for i in range(a, b + 1)]


@pytest.mark.parametrize("present, for_s, keep_s, expected", [
    # fires at the first evaluation at least `for` after the element appeared
    (ts((0, 10)), 0, 0, [(0, 11 * STEP)]),
    (ts((0, 10)), 60, 0, [(4 * STEP, 11 * STEP)]),
    (ts((0, 10)), 50, 0, [(4 * STEP, 11 * STEP)]),   # 50 s: the evaluation at 60 s is the first >= 50 s
    # pending shorter than `for`: dropped, no page
    (ts((0, 3)), 60, 0, []),
    # a gap drops a pending alert: it starts pending again
    (ts((0, 3), (5, 12)), 60, 0, [(9 * STEP, 13 * STEP)]),
    # a gap resolves a firing alert; it fires again as a new page
    (ts((0, 5), (7, 10)), 0, 0, [(0, 6 * STEP), (7 * STEP, 11 * STEP)]),
    # keep_firing_for bridges a gap shorter than it (one page) ...
    (ts((0, 5), (7, 10)), 0, 60, [(0, 15 * STEP)]),
    # ... and holds a page that long after the last evaluation that returned it
    (ts((0, 5)), 0, 60, [(0, 10 * STEP)]),
    # still firing at the last evaluation looked at: an open page
    (ts((0, 20)), 0, 0, [(0, None)]),
])
def test_the_rule_managers_states(present, for_s, keep_s, expected) -> None:
    assert episodes(present, STEP, for_s, keep_s, last=20 * STEP) == expected


def test_an_or_of_two_names_is_one_alert_instance() -> None:
    rule = backtest.Rule("A", "x", labels={"severity": "page"})
    series = {(("__name__", "a"), ("service", "shop")): ts((0, 5)),
              (("__name__", "b"), ("service", "shop")): ts((6, 9))}
    pages = backtest.pages_of(rule, series, STEP, 20 * STEP)
    assert [(p.labels, p.start, p.end) for p in pages] == [({"service": "shop", "severity": "page"}, 0, 10 * STEP)]


DAY, WEEK = 86400, 7 * 86400
SPAN = (0, 4 * WEEK)
INCIDENTS = [Window("fast-burn", 2 * DAY, 2 * DAY + 3600, (Expect("Burn", {"service": "shop"}),)),
             Window("latency", 10 * DAY, 10 * DAY + 3600, (Expect("Slow", {"service": "shop"}),))]


def alert(result: dict, name: str) -> dict:
    return next(a for a in result["alerts"] if a["alert"] == name)


def test_a_rule_that_pages_all_month_is_noisy_with_precision_near_0() -> None:
    result = backtest.score([Page("Burn", {"service": "shop"}, 0, None)], INCIDENTS, SPAN, 900)
    burn = alert(result, "Burn")
    assert burn["precision"] == 0 and burn["false_pages"] == 1 and burn["caught"] == 0
    assert burn["verdict"] == "noisy, deaf"
    assert burn["false_hours"] == 4 * 7 * 24


def test_pages_outside_the_incidents_are_false_and_inside_the_wrong_one_lower_precision() -> None:
    pages = [Page("Burn", {"service": "shop"}, 2 * DAY + 300, 2 * DAY + 4000),      # its incident
             Page("Burn", {"service": "shop"}, 10 * DAY + 60, 10 * DAY + 600),      # another incident
             Page("Burn", {"service": "shop"}, 20 * DAY, 20 * DAY + 600)]            # outside every one
    result = backtest.score(pages, INCIDENTS, SPAN, 900)
    burn = alert(result, "Burn")
    assert (burn["pages"], burn["caught"], burn["false_pages"], burn["precision"]) == (3, 1, 1, 0.333)
    assert burn["detect_s_median"] == 300 and burn["resolve_s_max"] == 400
    assert result["false_pages"] == ['Burn{service="shop"} at 1970-01-21 00:00:00 for 10m']
    assert burn["verdict"] == "noisy"   # precision under a half with a false page
    slow = alert(result, "Slow")
    assert slow["verdict"] == "deaf" and result["recall"] == 0.5


def test_a_page_within_the_grace_after_its_incident_counts_and_a_later_one_is_false() -> None:
    late = [Page("Slow", {"service": "shop"}, 10 * DAY + 3600 + 600, None)]
    assert alert(backtest.score(late, INCIDENTS, SPAN, 900), "Slow")["caught"] == 1
    assert alert(backtest.score(late, INCIDENTS, SPAN, 300), "Slow")["false_pages"] == 1


def test_chaos_runs_are_scored_with_the_same_definitions() -> None:
    """The sink's notifications become pages (repeats of a firing one are the same page);
    an inhibited expected alert counts as caught; a page outside the windows is false."""
    def note(name, status, at, **labels):
        when = datetime.fromtimestamp(at, timezone.utc).isoformat().replace("+00:00", "Z")
        return {"labels": {"alertname": name, **labels}, "status": status, "received_at": when}

    log = {"started": 0, "ended": 3600, "windows": [
        {"fault": "errors", "start": 100, "end": 400, "expect": [{"alertname": "Burn", "labels": {"service": "shop"}}]},
        {"fault": "outage", "start": 1000, "end": 1300,
         "expect": [{"alertname": "Ready", "labels": {"service": "inventory"}}],
         "alerts_at_end": [{"alertname": "Ready", "labels": {"service": "inventory"}, "alertmanager": ["suppressed"],
                            "inhibited_by": ["Burn"]}]}]}
    notes = [note("Burn", "firing", 130, service="shop"), note("Burn", "firing", 200, service="shop"),
             note("Burn", "resolved", 460, service="shop"), note("Down", "firing", 2500, service="loki")]
    result = scorecard.score_chaos(log, notes, grace=120)
    assert [r["verdict"] for r in result["rows"]] == ["paged", "held back: inhibited by Burn"]
    assert result["rows"][0]["detect_s"] == 30 and result["rows"][0]["resolve_s"] == 60
    assert alert(result, "Burn")["pages"] == 1 and result["recall"] == 1.0
    assert result["false_pages"] == ['Down{service="loki"} at 1970-01-01 00:41:40 still firing']
