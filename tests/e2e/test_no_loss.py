"""Nothing lost through an outage, counted: each test records what was sent (trace ids
the demo produced, alerts that fired, span-metric points) while a component is down, brings
it back, and proves that all of it arrived (sent = stored, lost = 0). The counts go to the
e2e summary. Runs after the signal tests and before resilience (conftest orders it)."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.signal("no-loss")]
PATH = "/api/products/1"  # shop -> inventory -> SQLite: one trace with both services
# The spans of one such trace, per service: shop's server span and its httpx client span,
# inventory's server span and its SQLite query (tests/unit/test_demo_traces.py's shape).
SPANS_OF = {"shop": 2, "inventory": 2}
SPANS_PER_TRACE = sum(SPANS_OF.values())


def record(scenario: str, sent: int, stored: int, **extra) -> None:
    st.MEASUREMENTS.setdefault("no_loss", {})[scenario] = {"sent": sent, "stored": stored,
                                                          "lost": sent - stored, **extra}


def traced_requests(seconds: float, rate: float) -> list[str]:
    """Sends shop requests at `rate` per second for `seconds`, each starting a trace of
    known id; returns every id. Every request must succeed: nothing on the request path
    depends on the component a test stops, and each one counts."""
    def one() -> tuple[str, int]:
        trace_id, headers = clients.new_trace_context()
        return trace_id, requests.get(clients.url("shop", PATH), headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures, t0 = [], time.monotonic()
        for i in range(int(seconds * rate)):
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            futures.append(pool.submit(one))
        sent = [f.result() for f in futures]
    failed = [(t, code) for t, code in sent if code != 200]
    assert not failed, f"{len(failed)} of {len(sent)} requests failed, e.g. {failed[:3]}"
    return [t for t, _ in sent]


def whole(trace: dict | None) -> bool:
    """A trace counts as stored only with every one of its spans."""
    if not trace:
        return False
    services = [trace["processes"][span["processID"]]["serviceName"] for span in trace["spans"]]
    return {svc: services.count(svc) for svc in set(services)} == SPANS_OF


def stored_traces(trace_ids: list[str]) -> set[str]:
    """The ids among `trace_ids` whose trace Jaeger holds whole."""
    return {t for t in trace_ids if whole(clients.jaeger_trace(t))}


def wait_all_stored(trace_ids: list[str], timeout: float, what: str) -> int:
    """Polls Jaeger until every trace is there (fails with the count missing); the number
    stored."""
    missing = set(trace_ids)

    def done() -> bool:
        missing.difference_update(stored_traces(sorted(missing)))
        assert not missing, f"{len(missing)} of {len(trace_ids)} traces not whole in Jaeger yet, e.g. {sorted(missing)[:3]}"
        return True

    poll_until(done, timeout, what, interval=5)
    return len(trace_ids) - len(missing)


@pytest.mark.services("jaeger", "otel-collector", "shop", "inventory")
def test_traces_started_while_jaeger_is_down_all_arrive(warm: st.Stack) -> None:
    warm.compose("stop", "jaeger")
    try:
        sent = traced_requests(seconds=60, rate=5)  # on top of the load generator's traffic
    finally:
        warm.compose("start", "jaeger")
    stored = wait_all_stored(sent, 240, "every trace started during the 60 s Jaeger outage is in Jaeger")
    record("Jaeger down 60 s: traces", len(sent), stored)


@pytest.mark.services("jaeger", "otel-collector", "prometheus", "shop", "inventory", "loadgen")
def test_collector_restart_keeps_what_it_queued_for_a_down_backend(warm: st.Stack) -> None:
    exporter = {"exporter": "otlp_grpc/jaeger"}
    # Only this test's traces flow meanwhile (the load generator is stopped): what enters
    # the collector is ours to count.
    warm.compose("stop", "loadgen")
    warm.compose("stop", "jaeger")
    try:
        def counts() -> tuple[float, float, float]:
            return (clients.collector_metric(warm, "otelcol_receiver_accepted_spans"),
                    clients.collector_metric(warm, "otelcol_exporter_sent_spans", **exporter),
                    clients.collector_metric(warm, "otelcol_exporter_queue_size", **exporter))  # bytes

        before = counts()
        sent = traced_requests(seconds=10, rate=5)
        # The demo's SDK exports its spans every 5 s (OTEL_BSP_SCHEDULE_DELAY): after two
        # rounds every span of these traces is in the collector, queued (on disk) for Jaeger.
        time.sleep(12)
        after = counts()
        queued = after[0] - before[0]  # accepted, and none of it sent: all in the queue
        assert queued >= SPANS_PER_TRACE * len(sent), (
            f"the collector accepted {queued:.0f} spans for {len(sent)} traces of {SPANS_PER_TRACE} spans")
        assert after[1] == before[1] and after[2] > before[2], f"sent/queued bytes before {before}, after {after}"
        warm.compose("stop", "otel-collector")
        warm.compose("start", "otel-collector")
    finally:
        warm.compose("start", "jaeger")
        warm.compose("start", "loadgen")
    stored = wait_all_stored(sent, 240, "every trace queued before the collector restart reaches Jaeger whole")
    record("collector restarted while Jaeger down: traces", len(sent), stored, spans_queued=int(queued))


# ---- alerts ------------------------------------------------------------------------------

def firing_in_prometheus(alertname: str, service: str) -> set[str]:
    """The alerts (their label sets) Prometheus holds firing and sends to Alertmanager."""
    alerts = clients.get_json("prometheus", "/api/v1/alerts")["data"]["alerts"]
    return {json.dumps(a["labels"], sort_keys=True) for a in alerts if a["state"] == "firing"
            and a["labels"].get("alertname") == alertname and a["labels"].get("service") == service}


def sink_alerts(alertname: str, service: str, status: str) -> list[dict]:
    alerts = clients.get_json("alert-sink", "/api/alerts", params={"alertname": alertname, "status": status})["alerts"]
    return [a for a in alerts if a["labels"].get("service") == service]


def sink_ids(alertname: str, service: str, status: str) -> set[int]:
    return {a["notification_id"] for a in sink_alerts(alertname, service, status)}


def delivered(alertname: str, service: str, status: str, notifications: set[int]) -> set[str]:
    """The alerts that arrived at the sink in `notifications`, as label sets comparable
    with firing_in_prometheus() (without the external labels Prometheus adds on sending)."""
    external = external_labels()
    return {json.dumps({k: v for k, v in a["labels"].items() if k not in external}, sort_keys=True)
            for a in sink_alerts(alertname, service, status) if a["notification_id"] in notifications}


def external_labels() -> set[str]:
    """The labels Prometheus adds to every alert it sends (global.external_labels)."""
    config = yaml.safe_load(clients.get_json("prometheus", "/api/v1/status/config")["data"]["yaml"])
    return set((config.get("global") or {}).get("external_labels") or {})


def stop_loadgen_until_resolved(stack: st.Stack, during) -> None:
    """Stops the load generator (TargetDown{service="loadgen"} fires), runs `during`, then
    starts it again and waits until the alert is resolved at the sink.

    It first waits until an earlier outage's alert (an earlier test may stop the load
    generator too) is resolved at the sink: while Alertmanager's notification log still
    holds it as firing, a new firing of the same alert is not notified again."""
    def settled() -> bool:
        firing, resolved = (sink_ids("TargetDown", "loadgen", s) for s in ("firing", "resolved"))
        return not firing or max(resolved, default=-1) > max(firing)

    poll_until(settled, 240, "an earlier TargetDown{service=loadgen} is resolved at the sink", interval=3)
    before = sink_ids("TargetDown", "loadgen", "resolved")
    stack.compose("stop", "loadgen")
    try:
        during()
    finally:
        stack.compose("start", "loadgen")
    poll_until(lambda: sink_ids("TargetDown", "loadgen", "resolved") - before, 180,
                  "TargetDown{service=loadgen} is resolved at the sink", interval=3)


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "loadgen")
def test_alert_firing_while_alertmanager_is_down_is_delivered(warm: st.Stack) -> None:
    before = sink_ids("TargetDown", "loadgen", "firing")
    fired: set[str] = set()

    def during() -> None:
        warm.compose("stop", "alertmanager")
        try:
            fired.update(poll_until(lambda: firing_in_prometheus("TargetDown", "loadgen"), 120,
                                    "TargetDown{service=loadgen} fires in Prometheus while Alertmanager is down",
                                    interval=3))
            time.sleep(10)  # Prometheus fails to send it meanwhile
        finally:
            warm.compose("start", "alertmanager")
        poll_until(lambda: delivered("TargetDown", "loadgen", "firing", sink_ids("TargetDown", "loadgen", "firing") - before)
                   >= fired, 180, "every alert that fired while Alertmanager was down reaches the sink", interval=3)

    stop_loadgen_until_resolved(warm, during)
    arrived = sink_ids("TargetDown", "loadgen", "firing") - before
    got = delivered("TargetDown", "loadgen", "firing", arrived)
    record("Alertmanager down when the alert fired", len(fired), len(fired & got), notifications=len(arrived))


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "loadgen")
def test_notification_to_a_stopped_sink_arrives_and_the_sink_keeps_its_store(warm: st.Stack) -> None:
    held = clients.get_json("alert-sink", "/api/notifications", params={"limit": 1000})
    # The Watchdog's repeats are trimmed by design (alertsink/store.py): the rest must stay.
    before_ids = {n["id"] for n in held["notifications"] if n["receiver"] != "watchdog"}
    before = sink_ids("TargetDown", "loadgen", "firing")
    failed = 'alertmanager_notifications_failed_total{integration="webhook"}'
    fired: set[str] = set()

    def failures() -> float:
        return sum(float(r["value"][1]) for r in clients.prom_query(f"sum({failed})"))

    def during() -> None:
        failures_before = failures()
        warm.compose("stop", "alert-sink")
        try:
            fired.update(poll_until(lambda: firing_in_prometheus("TargetDown", "loadgen"), 120,
                                    "TargetDown{service=loadgen} fires while the sink is down", interval=3))
            poll_until(lambda: failures() > failures_before, 120,
                          "Alertmanager fails to notify the stopped sink", interval=3)
        finally:
            warm.compose("start", "alert-sink")
        poll_until(lambda: delivered("TargetDown", "loadgen", "firing", sink_ids("TargetDown", "loadgen", "firing") - before)
                   >= fired, 180, "the notification Alertmanager could not deliver arrives once the sink is back",
                   interval=3)

    stop_loadgen_until_resolved(warm, during)
    arrived = sink_ids("TargetDown", "loadgen", "firing") - before
    after = clients.get_json("alert-sink", "/api/notifications", params={"limit": 1000})
    kept = before_ids & {n["id"] for n in after["notifications"]}
    assert kept == before_ids, f"the sink lost {len(before_ids - kept)} notifications across its restart"
    got = delivered("TargetDown", "loadgen", "firing", arrived)
    record("alert sink down while notified", len(fired), len(fired & got), notifications=len(arrived))
    record("alert sink restart: notifications kept", len(before_ids), len(kept))


# ---- metrics -------------------------------------------------------------------------------

def series_samples(selector: str, window_s: int) -> dict[str, list[float]]:
    """Raw sample timestamps of each series `selector` picks over the last `window_s`
    seconds, sorted. (Span metrics carry the collector's instance id, so a collector
    restart starts a new series.)"""
    result = clients.prom_query(f"{selector}[{window_s}s]")
    assert result, f"no samples of {selector}"
    return {json.dumps(r["metric"], sort_keys=True): sorted(float(t) for t, _ in r["values"]) for r in result}


FLUSH_S = 15  # the span_metrics connector's metrics_flush_interval (otel-collector/config.yml)


@pytest.mark.services("prometheus", "otel-collector", "shop", "inventory")
def test_prometheus_restart_loses_no_span_metric_points(warm: st.Stack) -> None:
    span_series = 'traces_span_metrics_calls_total{service_name="shop", span_name="GET /api/products/{product_id}", status_code="STATUS_CODE_UNSET"}'
    scraped = 'up{job="shop"}'
    # A series of the running collector (a restart starts a new one) old enough to have
    # points before the outage's margin.
    poll_until(lambda: any(s[0] <= time.time() - 4 * FLUSH_S for s in series_samples(span_series, 900).values()
                              if s[-1] >= time.time() - 2 * FLUSH_S), 180,
                  f"{span_series} has points from a minute back", interval=5)
    t_stop = time.time()
    warm.compose("stop", "prometheus")
    time.sleep(45)  # three span-metric flushes (every 15 s) wait in the collector's queue
    t_start = time.time()
    warm.compose("start", "prometheus")
    poll_until(lambda: requests.get(clients.url("prometheus", "/-/ready"), timeout=5).ok, 120, "Prometheus is ready")
    # The connector flushes every FLUSH_S on its own clock: a series' points lie on a grid.
    # Over the outage and a margin around it, the grid's every slot must hold a point.
    lo, hi = t_stop - 3 * FLUSH_S, t_start + 3 * FLUSH_S

    def grid() -> tuple[int, int]:
        series = [s for s in series_samples(span_series, 900).values() if s[0] <= lo and s[-1] >= hi]
        assert series, f"no series of {span_series} spans the outage with its margins"
        # What the collector sent: a point every FLUSH_S on its own clock, whose phase the
        # points from before the outage (stored then) give; every slot in the window.
        anchor = max(t for t in series[0] if t <= lo)
        slots = [anchor + k * FLUSH_S for k in range(1, int((hi - anchor) // FLUSH_S) + 1)]
        stamps = [t for t in series[0] if lo < t <= hi]
        missing = [round(t - t_stop) for t in slots if not any(abs(t - s) <= 1 for s in stamps)]
        assert not missing, f"{len(missing)} of {len(slots)} flushes have no point (s after the stop: {missing})"
        return len(slots), len(slots) - len(missing)

    expected, stored = poll_until(grid, 180, "every span-metric point pushed while Prometheus was down "
                                     "arrives, on its flush grid", interval=5)
    record("Prometheus down 45 s: span-metric points of one series (outage +/- 45 s)", expected, stored)
    # Scraped series cannot be filled in (nobody scraped while it was down): the gap is the
    # downtime plus at most a scrape interval or two, and not more.
    time.sleep(15)
    scrapes = sorted(t for s in series_samples(scraped, 600).values() for t in s)
    gap = max(b - a for a, b in zip(scrapes, scrapes[1:]))
    st.MEASUREMENTS.setdefault("no_loss", {})["Prometheus down: longest gap in scraped series (s)"] = round(gap, 1)
    assert gap <= (t_start - t_stop) + 30, f"scraped series gap {gap:.0f} s for a {t_start - t_stop:.0f} s outage"


@pytest.mark.services("loki", "otel-collector", "shop")
def test_logs_written_while_loki_is_down_arrive(warm: st.Stack) -> None:
    from tests.e2e.test_logs import loki_streams

    warm.compose("stop", "loki")
    try:
        sent = traced_requests(seconds=30, rate=2)
    finally:
        warm.compose("start", "loki")
    missing = set(sent)

    def all_there() -> bool:
        missing.difference_update({t for t in missing
                                   if loki_streams(warm, f'{{service_name="shop"}} | trace_id = "{t}"', window_s=600)})
        assert not missing, f"{len(missing)} of {len(sent)} requests have no log line in Loki yet"
        return True

    poll_until(all_there, 240, "the log lines written while Loki was down arrive", interval=5)
    record("Loki down 30 s: request logs", len(sent), len(sent) - len(missing))
