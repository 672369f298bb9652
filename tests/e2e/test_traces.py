"""Traces: a shop request's trace reaches Jaeger (through the collector) with the
inventory child span and the database span; Jaeger's Monitor API serves call rates from
Prometheus' span metrics; an exemplar's trace_id opens a trace."""
from __future__ import annotations

import time

import pytest
import requests

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.signal("traces")]
DB_KEYS = ("db.system", "db.system.name")  # old and new semantic conventions


def describe(trace: dict) -> list[tuple[str, str, str]]:
    """(service, operation, parent operation) of every span, for failure messages."""
    spans = {s["spanID"]: s for s in trace["spans"]}
    out = []
    for s in trace["spans"]:
        parent = spans.get(parent_id(s) or "")
        out.append((service_of(trace, s), s["operationName"], parent["operationName"] if parent else "-"))
    return sorted(out)


def service_of(trace: dict, span: dict) -> str:
    return trace["processes"][span["processID"]]["serviceName"]


def parent_id(span: dict) -> str | None:
    return next((r["spanID"] for r in span.get("references") or [] if r["refType"] == "CHILD_OF"), None)


def check_shop_inventory_db(trace: dict) -> dict:
    """Assert the trace crosses shop -> inventory -> database; returns the db span."""
    spans = {s["spanID"]: s for s in trace["spans"]}
    services = {service_of(trace, s) for s in trace["spans"]}
    assert {"shop", "inventory"} <= services, f"services in trace: {services}; spans: {describe(trace)}"
    # The inventory server span's parent is a span of shop: context crossed the process boundary.
    crossing = [s for s in trace["spans"] if service_of(trace, s) == "inventory"
                and (p := spans.get(parent_id(s) or "")) and service_of(trace, p) == "shop"]
    assert crossing, f"no inventory span is a child of a shop span: {describe(trace)}"
    db = [s for s in trace["spans"] if any(t["key"] in DB_KEYS for t in s.get("tags") or [])]
    assert db, f"no database span (tag {' or '.join(DB_KEYS)}): {describe(trace)}"
    # ... and the database span hangs below inventory's span, in inventory's process.
    inventory_ids = {s["spanID"] for s in trace["spans"] if service_of(trace, s) == "inventory"}

    def under_inventory(span: dict) -> bool:
        seen = set()
        while (pid := parent_id(span)) and pid not in seen:
            if pid in inventory_ids:
                return True
            seen.add(pid)
            span = spans.get(pid) or {}
        return False

    db_under = [s for s in db if service_of(trace, s) == "inventory" and under_inventory(s)]
    assert db_under, f"database span(s) not below an inventory span: {describe(trace)}"
    return db_under[0]


@pytest.mark.services("jaeger", "otel-collector", "shop", "inventory")
def test_shop_request_trace_has_inventory_and_database_spans(warm: st.Stack) -> None:
    trace_id, headers = clients.new_trace_context()
    r = requests.get(clients.url("shop", "/api/products/1"), headers=headers, timeout=10)
    assert r.status_code == 200, f"GET /api/products/1 -> {r.status_code} {r.text[:300]}"

    def complete() -> dict:
        trace = clients.jaeger_trace(trace_id)
        assert trace, f"trace {trace_id} not in Jaeger yet"
        check_shop_inventory_db(trace)
        return trace

    trace = poll_until(complete, 90, f"trace {trace_id} of GET /api/products/1 is in Jaeger "
                          "with shop -> inventory -> database spans", interval=2)
    st.MEASUREMENTS["sample_trace"] = {"trace_id": trace_id, "spans": len(trace["spans"])}


@pytest.mark.services("jaeger", "prometheus", "otel-collector", "shop")
def test_jaeger_monitor_api_returns_call_rates(warm: st.Stack) -> None:
    def rates() -> list[float]:
        end_ms = int(time.time() * 1000)
        body = clients.get_json("jaeger", "/api/metrics/calls", params={
            "service": "shop", "endTs": end_ms, "lookback": 600_000, "step": 15_000, "ratePer": 60_000})
        points = [p for m in body.get("metrics") or [] for p in m.get("metricPoints") or []]
        values = [float(p["gaugeValue"]["doubleValue"]) for p in points if "gaugeValue" in p]
        positive = [v for v in values if v == v and v > 0]  # v == v drops NaN
        assert positive, f"no positive call rate among {len(points)} points: {st.to_json(body)[:600]}"
        return positive

    poll_until(rates, 150, "Jaeger's Monitor API (/api/metrics/calls?service=shop) returns call rates",
                  interval=5)


@pytest.mark.services("prometheus", "jaeger", "otel-collector", "shop", "inventory")
def test_exemplar_trace_id_opens_a_trace_in_jaeger(warm: st.Stack) -> None:
    series = 'demo_http_request_duration_seconds_bucket{service="shop", route="/api/products/{product_id}"}'

    def resolved() -> dict:
        ids = clients.exemplar_trace_ids(series)
        assert ids, f"no exemplar with a trace_id on {series} yet"
        # The newest exemplars may belong to traces still in flight to Jaeger, and each
        # service exports its spans on its own schedule: a trace found without shop's spans
        # yet is still arriving. Try a few.
        found = {}
        for trace_id in reversed(ids[-5:]):
            if trace := clients.jaeger_trace(trace_id):
                if "shop" in {service_of(trace, s) for s in trace["spans"]}:
                    return trace
                found[trace_id] = describe(trace)
        raise AssertionError(f"none of the exemplar trace_ids {ids[-5:]} is in Jaeger with shop's spans: {found}")

    poll_until(resolved, 120, "an exemplar's trace_id resolves to a trace in Jaeger with shop's spans", interval=3)
