"""/metrics: names and labels of docs/conventions.md, trace_id exemplars in OpenMetrics."""

from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_shop_metrics_names_labels_and_exemplars(stack):
    with TestClient(stack.shop_app) as client:
        assert client.get("/api/products/3").status_code == 200
        assert client.post("/api/checkout", json={"product_id": 1, "quantity": 1}).status_code == 200
        assert client.post("/api/checkout", json={"product_id": 99, "quantity": 1}).status_code == 404
        r = client.get("/metrics", headers={"Accept": OPENMETRICS})
        spans = stack.flush()
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    fam = _families(r.text)
    for name in ("demo_http_requests", "demo_http_request_duration_seconds", "demo_http_requests_in_flight",
                 "demo_orders", "demo_readiness", "demo_build", "demo_telemetry_export_errors"):
        assert name in fam, name
    assert fam["demo_http_requests"].type == "counter"
    assert fam["demo_http_request_duration_seconds"].type == "histogram"
    assert fam["demo_build"].type == "info"

    trace_ids = {format(s.context.trace_id, "032x") for s in spans}
    req = [s for s in fam["demo_http_requests"].samples if s.name == "demo_http_requests_total"]
    get_one = [s for s in req if s.labels["route"] == "/api/products/{product_id}"]
    assert len(get_one) == 1, "route label must be the template, never the raw path"
    assert get_one[0].labels == {"service": "shop", "route": "/api/products/{product_id}",
                                 "method": "GET", "status_code": "200"}
    assert get_one[0].exemplar is not None and get_one[0].exemplar.labels["trace_id"] in trace_ids

    buckets = [s for s in fam["demo_http_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["route"] == "/api/checkout"]
    assert {tuple(sorted(set(s.labels) - {"le"})) for s in buckets} == {("method", "route", "service")}
    ex = [s.exemplar for s in buckets if s.exemplar is not None]
    assert ex and all(e.labels["trace_id"] in trace_ids for e in ex)

    orders = {s.labels["result"]: s.value for s in fam["demo_orders"].samples}
    assert orders == {"placed": 1.0, "rejected": 1.0, "failed": 0.0}
    build = fam["demo_build"].samples[0].labels
    assert set(build) == {"service", "version", "python_version"} and build["service"] == "shop"
    errs = {s.labels["signal"]: s.value for s in fam["demo_telemetry_export_errors"].samples}
    assert errs == {"traces": 0.0, "logs": 0.0}
    readiness = fam["demo_readiness"].samples
    assert [(s.labels, s.value) for s in readiness] == [({"service": "shop", "check": "inventory"}, 1.0)]


def test_inventory_stock_gauge_and_plain_text_format(stack):
    with TestClient(stack.inventory_app) as client:
        before = {s.labels["item"]: s.value for f in text_families(client.get("/metrics").text)
                  if f.name == "demo_stock_level" for s in f.samples}
        assert client.post("/api/items/4/reserve", json={"quantity": 3}).status_code == 200
        text = client.get("/metrics").text  # no Accept: classic text format, still parseable
    after = {s.labels["item"]: s.value for f in text_families(text) if f.name == "demo_stock_level" for s in f.samples}
    assert after["burr grinder"] == before["burr grinder"] - 3
    assert "# {trace_id=" not in text  # exemplars only in OpenMetrics


def test_unmatched_paths_do_not_explode_cardinality(stack):
    with TestClient(stack.inventory_app) as client:
        for i in range(5):
            assert client.get(f"/no/such/path/{i}").status_code == 404
        fam = _families(client.get("/metrics", headers={"Accept": OPENMETRICS}).text)
    routes = {s.labels["route"] for s in fam["demo_http_requests"].samples}
    assert "unmatched" in routes and not any(r.startswith("/no/") for r in routes)
