"""Logs: the demo's records reach Loki over OTLP (collector -> Loki /otlp) with the
service_name label and trace_id as structured metadata, and that trace_id opens the
request's trace in Jaeger."""
from __future__ import annotations

import time

import pytest
import requests

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.signal("logs")]


def loki_streams(stack: st.Stack, query: str, window_s: float = 900) -> list[dict]:
    """Loki's query API, from inside the network: Loki publishes no port (Grafana is its UI)."""
    end = time.time_ns()
    body = clients.inside_json(stack, "loki", 3100, "/loki/api/v1/query_range", params={
        "query": query, "start": end - int(window_s * 1e9), "end": end, "limit": 100,
        "direction": "backward"})
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.services("loki", "otel-collector", "shop", "inventory")
def test_demo_logs_in_loki_with_service_name_and_trace_id(warm: st.Stack) -> None:
    def streams() -> dict[str, list[dict]]:
        found = {svc: loki_streams(warm, f'{{service_name="{svc}"}} | trace_id != ""') for svc in ("shop", "inventory")}
        assert all(found.values()), f"log streams with a trace_id per service: { {k: len(v) for k, v in found.items()} }"
        return found

    found = poll_until(streams, 120, "shop and inventory log lines with a trace_id are in Loki", interval=3)
    for svc, result in found.items():
        labels = result[0]["stream"]
        assert labels.get("service_name") == svc, labels
        assert clients.HEX32.fullmatch(labels.get("trace_id", "")), f"trace_id is not 32 hex: {labels}"


@pytest.mark.services("loki", "jaeger", "otel-collector", "shop", "inventory")
def test_log_trace_id_resolves_in_jaeger(warm: st.Stack) -> None:
    trace_id, headers = clients.new_trace_context()
    r = requests.get(clients.url("shop", "/api/products/1"), headers=headers, timeout=10)
    assert r.status_code == 200, r.text[:300]
    query = f'{{service_name="shop"}} | trace_id = "{trace_id}"'
    poll_until(lambda: loki_streams(warm, query, window_s=300), 120,
                  f"Loki has a shop log line of the request traced as {trace_id} ({query})", interval=3)
    trace = poll_until(lambda: clients.jaeger_trace(trace_id), 90,
                          f"the log line's trace_id {trace_id} resolves in Jaeger", interval=2)
    assert trace["traceID"].lstrip("0") == trace_id.lstrip("0"), trace["traceID"]
