"""Nothing lost through an outage, counted: each test records what was sent (trace ids
the demo produced, alerts that fired, span-metric points) while a component is down, brings
it back, and proves that all of it arrived (sent = stored, lost = 0). The counts go to the
e2e summary. Runs after the signal tests and before resilience (conftest orders it)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e import stack as st

pytestmark = [pytest.mark.e2e, pytest.mark.signal("no-loss")]
PATH = "/api/products/1"  # shop -> inventory -> SQLite: one trace with both services
SPANS_PER_TRACE = 4  # shop server, its httpx client, inventory server, the SQLite query


def record(scenario: str, sent: int, stored: int, **extra) -> None:
    st.MEASUREMENTS.setdefault("no_loss", {})[scenario] = {"sent": sent, "stored": stored,
                                                          "lost": sent - stored, **extra}


def traced_requests(seconds: float, rate: float) -> list[str]:
    """Sends shop requests at `rate` per second for `seconds`, each starting a trace of
    known id; returns the ids of those the shop answered 200 (they made a whole trace)."""
    ids: list[str] = []

    def one() -> str | None:
        trace_id, headers = st.new_trace_context()
        r = requests.get(st.url("shop", PATH), headers=headers, timeout=10)
        return trace_id if r.status_code == 200 else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures, t0 = [], time.monotonic()
        for i in range(int(seconds * rate)):
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            futures.append(pool.submit(one))
        ids = [f.result() for f in futures]
    return [i for i in ids if i]


def stored_traces(trace_ids: list[str]) -> set[str]:
    """The ids among `trace_ids` whose trace Jaeger holds with spans of shop and inventory."""
    found = set()
    for trace_id in trace_ids:
        trace = st.jaeger_trace(trace_id)
        if trace and {p["serviceName"] for p in trace["processes"].values()} >= {"shop", "inventory"}:
            found.add(trace_id)
    return found


def wait_all_stored(trace_ids: list[str], timeout: float, what: str) -> int:
    """Polls Jaeger until every trace is there (fails with the count missing); the number
    stored."""
    missing = set(trace_ids)

    def done() -> bool:
        missing.difference_update(stored_traces(sorted(missing)))
        assert not missing, f"{len(missing)} of {len(trace_ids)} traces not in Jaeger yet, e.g. {sorted(missing)[:3]}"
        return True

    st.poll_until(done, timeout, what, interval=5)
    return len(trace_ids) - len(missing)


@pytest.mark.services("jaeger", "otel-collector", "shop", "inventory")
def test_traces_started_while_jaeger_is_down_all_arrive(warm: st.Stack) -> None:
    warm.compose("stop", "jaeger")
    try:
        sent = traced_requests(seconds=60, rate=5)  # on top of the load generator's traffic
    finally:
        warm.compose("start", "jaeger")
    assert len(sent) >= 250, f"only {len(sent)} of 300 requests succeeded while Jaeger was down"
    stored = wait_all_stored(sent, 240, "every trace started during the 60 s Jaeger outage is in Jaeger")
    record("Jaeger down 60 s: traces", len(sent), stored)


@pytest.mark.services("jaeger", "otel-collector", "prometheus", "shop", "inventory")
def test_collector_restart_keeps_what_it_queued_for_a_down_backend(warm: st.Stack) -> None:
    exporter = {"exporter": "otlp_grpc/jaeger"}
    warm.compose("stop", "jaeger")
    try:
        sent = traced_requests(seconds=10, rate=5)
        # The demo's SDK exports its spans every 5 s (OTEL_BSP_SCHEDULE_DELAY): after two
        # rounds every span of these traces is in the collector, queued (on disk) for Jaeger.
        time.sleep(12)
        queued = st.collector_metric(warm, "otelcol_exporter_queue_size", **exporter)
        assert queued >= SPANS_PER_TRACE * len(sent), f"only {queued} spans queued for {len(sent)} traces"
        warm.compose("stop", "otel-collector")
        warm.compose("start", "otel-collector")
    finally:
        warm.compose("start", "jaeger")
    stored = wait_all_stored(sent, 240, "every trace queued before the collector restart reaches Jaeger")
    record("collector restarted while Jaeger down: traces", len(sent), stored, spans_queued=int(queued))


# ---- alerts ------------------------------------------------------------------------------

def firing_in_prometheus(alertname: str, service: str) -> bool:
    alerts = st.get_json("prometheus", "/api/v1/alerts")["data"]["alerts"]
    return any(a["state"] == "firing" and a["labels"].get("alertname") == alertname
               and a["labels"].get("service") == service for a in alerts)


def sink_ids(alertname: str, service: str, status: str) -> set[int]:
    alerts = st.get_json("alert-sink", "/api/alerts", params={"alertname": alertname, "status": status})["alerts"]
    return {a["notification_id"] for a in alerts if a["labels"].get("service") == service}


def stop_loadgen_until_resolved(stack: st.Stack, during) -> None:
    """Stops the load generator (TargetDown{service="loadgen"} fires), runs `during`, then
    starts it again and waits until the alert is resolved at the sink."""
    before = sink_ids("TargetDown", "loadgen", "resolved")
    stack.compose("stop", "loadgen")
    try:
        during()
    finally:
        stack.compose("start", "loadgen")
    st.poll_until(lambda: sink_ids("TargetDown", "loadgen", "resolved") - before, 180,
                  "TargetDown{service=loadgen} is resolved at the sink", interval=3)


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "loadgen")
def test_alert_firing_while_alertmanager_is_down_is_delivered(warm: st.Stack) -> None:
    before = sink_ids("TargetDown", "loadgen", "firing")

    def during() -> None:
        warm.compose("stop", "alertmanager")
        try:
            st.poll_until(lambda: firing_in_prometheus("TargetDown", "loadgen"), 120,
                          "TargetDown{service=loadgen} fires in Prometheus while Alertmanager is down", interval=3)
            time.sleep(10)  # Prometheus fails to send it meanwhile
        finally:
            warm.compose("start", "alertmanager")
        st.poll_until(lambda: sink_ids("TargetDown", "loadgen", "firing") - before, 180,
                      "the alert that fired while Alertmanager was down reaches the sink", interval=3)

    stop_loadgen_until_resolved(warm, during)
    record("Alertmanager down when the alert fired", 1, 1 if sink_ids("TargetDown", "loadgen", "firing") - before else 0)


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "loadgen")
def test_notification_to_a_stopped_sink_arrives_and_the_sink_keeps_its_store(warm: st.Stack) -> None:
    held = st.get_json("alert-sink", "/api/notifications", params={"limit": 1000})
    before_ids = {n["id"] for n in held["notifications"]}
    before = sink_ids("TargetDown", "loadgen", "firing")
    failed = 'alertmanager_notifications_failed_total{integration="webhook"}'

    def failures() -> float:
        return sum(float(r["value"][1]) for r in st.prom_query(f"sum({failed})"))

    def during() -> None:
        failures_before = failures()
        warm.compose("stop", "alert-sink")
        try:
            st.poll_until(lambda: firing_in_prometheus("TargetDown", "loadgen"), 120,
                          "TargetDown{service=loadgen} fires while the sink is down", interval=3)
            st.poll_until(lambda: failures() > failures_before, 120,
                          "Alertmanager fails to notify the stopped sink", interval=3)
        finally:
            warm.compose("start", "alert-sink")
        st.poll_until(lambda: sink_ids("TargetDown", "loadgen", "firing") - before, 180,
                      "the notification Alertmanager could not deliver arrives once the sink is back", interval=3)

    stop_loadgen_until_resolved(warm, during)
    after = st.get_json("alert-sink", "/api/notifications", params={"limit": 1000})
    kept = before_ids & {n["id"] for n in after["notifications"]}
    assert kept == before_ids, f"the sink lost {len(before_ids - kept)} notifications across its restart"
    record("alert sink down while notified", 1, 1)
    record("alert sink restart: notifications kept", len(before_ids), len(kept))


# ---- metrics -------------------------------------------------------------------------------

def raw_samples(selector: str, window_s: int) -> list[float]:
    """Timestamps of the raw samples of the series `selector` picks over the last
    `window_s` seconds, sorted. (Span metrics carry the collector's instance id, so a
    collector restart starts a new series: the union is the signal's history.)"""
    result = st.prom_query(f"{selector}[{window_s}s]")
    assert result, f"no samples of {selector}"
    return sorted({float(t) for r in result for t, _ in r["values"]})


@pytest.mark.services("prometheus", "otel-collector", "shop", "inventory")
def test_prometheus_restart_loses_no_span_metric_points(warm: st.Stack) -> None:
    span_series = 'traces_span_metrics_calls_total{service_name="shop", span_name="GET /api/products/{product_id}", status_code="STATUS_CODE_UNSET"}'
    scraped = 'up{job="shop"}'
    st.poll_until(lambda: st.prom_query(span_series), 120, f"{span_series} exists")
    t_stop = time.time()
    warm.compose("stop", "prometheus")
    time.sleep(45)  # three span-metric flushes (every 15 s) wait in the collector's queue
    t_start = time.time()
    warm.compose("start", "prometheus")
    st.poll_until(lambda: requests.get(st.url("prometheus", "/-/ready"), timeout=5).ok, 120, "Prometheus is ready")
    flush_s = 15
    expected = int((t_start - t_stop) // flush_s)

    def delivered() -> list[float]:
        stamps = [t for t in raw_samples(span_series, 600) if t_stop <= t <= t_start]
        assert len(stamps) >= expected, f"{len(stamps)} of {expected} points of the outage arrived"
        return stamps

    stamps = st.poll_until(delivered, 180, "the span-metric points pushed while Prometheus was down arrive",
                           interval=5)
    record("Prometheus down 45 s: span-metric points of one series", expected, min(len(stamps), expected))
    # Scraped series cannot be filled in (nobody scraped while it was down): the gap is the
    # downtime plus at most a scrape interval or two, and not more.
    time.sleep(15)
    scrapes = raw_samples(scraped, 600)
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
                                   if loki_streams(f'{{service_name="shop"}} | trace_id = "{t}"', window_s=600)})
        assert not missing, f"{len(missing)} of {len(sent)} requests have no log line in Loki yet"
        return True

    st.poll_until(all_there, 240, "the log lines written while Loki was down arrive", interval=5)
    record("Loki down 30 s: request logs", len(sent), len(sent) - len(missing))
