"""Resilience: the demo keeps serving, never waiting for an export, while the collector is gone and its
telemetry flows again once it is back; Prometheus' data survives losing its container
(the named volume). Runs after every other e2e test (conftest orders it last)."""
from __future__ import annotations

import json
import statistics
import subprocess
import time

import pytest
import requests

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.signal("resilience")]
PATH = "/api/products/1"  # shop -> inventory -> SQLite: the whole demo path


def latencies(n: int, pause: float = 0.1) -> list[float]:
    """Seconds per request for n shop requests; every one must succeed."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = requests.get(clients.url("shop", PATH), timeout=10)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, f"GET {PATH} -> {r.status_code} {r.text[:200]}"
        time.sleep(pause)
    return out


def export_errors() -> float:
    return sum(float(r["value"][1]) for r in clients.prom_query(
        'sum(demo_telemetry_export_errors_total{service=~"shop|inventory"})'))


# The SDK's OTLP export timeout (OTEL_EXPORTER_OTLP_TIMEOUT, default 10 s): a request held up
# by a failing export would take about this long. Latency figures are printed, not asserted.
EXPORT_TIMEOUT_S = 10.0


@pytest.mark.services("otel-collector", "prometheus", "shop", "inventory")
def test_demo_serves_without_the_collector_and_recovers(warm: st.Stack) -> None:
    base = latencies(20)
    errors_before = export_errors()
    warm.compose("stop", "otel-collector")
    try:
        time.sleep(2)
        # ~30 s without a collector: longer than the SDK's batch delay and export timeout,
        # so exports really fail while requests are served (every one must succeed).
        during = latencies(100, pause=0.3)
        st.MEASUREMENTS["latency_without_collector_s"] = {
            "median_before": round(statistics.median(base), 4), "median_during": round(statistics.median(during), 4),
            "max_during": round(max(during), 4)}
        # No request waits for an export: a blocked one would take the export timeout.
        assert max(during) < EXPORT_TIMEOUT_S / 2, (
            f"a request took {max(during):.2f}s without the collector: it waited for a telemetry export")
        # The loss is visible: the services count failed exports (docs/conventions.md).
        poll_until(lambda: export_errors() > errors_before, 60,
                      "demo_telemetry_export_errors_total rises while the collector is stopped", interval=3)
    finally:
        restarted = time.time()
        warm.compose("start", "otel-collector")

    # Telemetry flows again: span metrics with samples newer than the restart.
    expr = 'max(timestamp(traces_span_metrics_calls_total{service_name="shop"}))'
    latencies(10)
    poll_until(lambda: (r := clients.prom_query(expr)) and float(r[0]["value"][1]) > restarted, 120,
                  "span metrics newer than the collector's restart reach Prometheus", interval=3)
    if "jaeger" in warm.running():
        trace_id, headers = clients.new_trace_context()
        assert requests.get(clients.url("shop", PATH), headers=headers, timeout=10).status_code == 200
        poll_until(lambda: clients.jaeger_trace(trace_id), 90,
                      f"a trace sent after the collector's restart ({trace_id}) reaches Jaeger", interval=2)


def _sample_count(expr: str, start: float, end: float) -> int:
    body = clients.get_json("prometheus", "/api/v1/query_range",
                       params={"query": expr, "start": start, "end": end, "step": 5})
    return sum(len(s["values"]) for s in body["data"]["result"])


@pytest.mark.services("prometheus")
def test_prometheus_data_survives_a_new_container(warm: st.Stack) -> None:
    # Recreating the container (what `make down && make up` does) is stronger than a
    # restart, which would keep the container's own filesystem.
    before_id = warm.containers()["prometheus"]["ID"]
    mounts = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .Mounts}}", before_id],
                                       capture_output=True, text=True, check=True).stdout)
    volume = [m for m in mounts if m.get("Destination") == "/prometheus"]
    assert volume and volume[0]["Type"] == "volume", f"/prometheus is not a named volume: {mounts}"

    end = time.time() - 15
    start = end - 600
    expr = 'up{job="prometheus"}'
    before = _sample_count(expr, start, end)
    assert before > 0, f"no samples of {expr} before the restart"

    warm.compose("rm", "--stop", "--force", "prometheus")
    warm.compose("up", "--detach", "--wait", "--no-deps", "prometheus", timeout=300)
    after_id = warm.containers()["prometheus"]["ID"]
    assert after_id != before_id, "prometheus container was not recreated"

    def same_history() -> int:
        n = _sample_count(expr, start, end)
        assert n >= before, f"{n} samples of {expr} in the window after recreation, {before} before"
        return n

    poll_until(same_history, 90, "Prometheus answers with the pre-restart samples from its volume",
                  interval=3)
