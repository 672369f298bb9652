"""Spans are produced and parented across shop -> inventory (W3C traceparent)."""

from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode

from .conftest import AUTH


def _by_id(spans):
    return {s.context.span_id: s for s in spans}


def _ancestors(span, index):
    out = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        out.append(span)
    return out


def test_checkout_trace_crosses_both_services(stack):
    with TestClient(stack.shop_app) as client:
        r = client.post("/api/checkout", json={"product_id": 2, "quantity": 1})
        assert r.status_code == 200, r.text
        spans = stack.flush()
    assert stack.audit_traces, "the stock audit did not run at start"

    shop_server = [s for s in spans if s.kind == SpanKind.SERVER and s.resource.attributes["service.name"] == "shop"]
    inv_server = [s for s in spans if s.kind == SpanKind.SERVER
                  and s.resource.attributes["service.name"] == "inventory"]
    assert len(shop_server) == 1 and len(inv_server) == 1, [s.name for s in spans]
    shop_root, inv_root = shop_server[0], inv_server[0]
    assert shop_root.name == "POST /api/checkout"
    assert inv_root.name == "POST /api/items/{item_id}/reserve"
    # one trace across the process boundary
    assert inv_root.context.trace_id == shop_root.context.trace_id
    assert shop_root.parent is None

    index = _by_id(spans)
    # inventory's server span is the child of shop's httpx client span ...
    client_span = index[inv_root.parent.span_id]
    assert client_span.kind == SpanKind.CLIENT
    assert client_span.resource.attributes["service.name"] == "shop"
    # ... which sits under the custom checkout span, under shop's server span.
    checkout = next(s for s in spans if s.name == "shop.checkout")
    assert checkout in _ancestors(client_span, index)
    assert shop_root in _ancestors(checkout, index)
    assert checkout.attributes["demo.product.id"] == 2
    assert checkout.attributes["demo.order.result"] == "placed"
    assert [e.name for e in checkout.events] == ["order.placed"]

    # inventory: custom reserve span with an event, and database spans under it
    reserve = next(s for s in spans if s.name == "inventory.reserve")
    assert inv_root in _ancestors(reserve, index)
    assert "stock.reserved" in [e.name for e in reserve.events]
    db = [s for s in spans if s.attributes.get("db.system") == "sqlite"
          or s.attributes.get("db.system.name") == "sqlite"]
    assert db, [(s.name, dict(s.attributes)) for s in spans]
    assert all(reserve in _ancestors(s, index) for s in db)
    assert all(s.context.trace_id == shop_root.context.trace_id for s in spans)


def test_list_products_has_db_span_in_same_trace(stack):
    with TestClient(stack.shop_app) as client:
        assert client.get("/api/products").status_code == 200
        spans = stack.flush()
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 1
    assert any(s.kind == SpanKind.CLIENT and s.resource.attributes["service.name"] == "inventory"
               for s in spans), "no database (client) span in inventory"


def test_dependency_failure_is_recorded_as_exception(stack):
    with TestClient(stack.shop_app) as client:
        assert client.post("/admin/faults", json={"outage": True}, headers=AUTH).status_code == 200
        r = client.get("/api/products")
        assert r.status_code == 503
        assert "inventory unavailable" in r.json()["error"]
        spans = stack.flush()
    root = next(s for s in spans if s.name == "GET /api/products")
    assert root.status.status_code == StatusCode.ERROR
    exc_events = [e for e in root.events if e.name == "exception"]
    assert exc_events and exc_events[0].attributes["exception.type"].endswith("DependencyUnavailable")
    # the outage stops the call before it leaves shop: no inventory span at all
    assert not [s for s in spans if s.resource.attributes["service.name"] == "inventory"]


def test_telemetry_disabled_still_serves(monkeypatch):
    from demo_app import inventory
    from demo_app.settings import InventorySettings
    from demo_app.telemetry import Telemetry

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tel = Telemetry("inventory")
    assert not tel.enabled
    with TestClient(inventory.create_app(InventorySettings(), tel)) as client:
        assert client.get("/api/items").json()["count"] == 6
        text = client.get("/metrics", headers={"Accept": "application/openmetrics-text"}).text
    # no span, so no exemplar
    assert 'demo_http_requests_total{method="GET",route="/api/items",service="inventory",status_code="200"} 1.0\n' in text
