"""Every metric a rule names exists: in the demo's own registries, in a recording rule, or in
the components' self-metrics (tests/metric_catalog_data/). Uses the real Prometheus parser."""
from __future__ import annotations

import pytest

import tests.metric_catalog as catalog
from tests.config import alert_rules as ar

RULES = [(f"{f.name}:{r.get('alert') or r.get('record')}", r["expr"]) for f, _, r in ar.rules()]

CONVENTIONS_DEMO = {
    "demo_http_requests_total", "demo_http_request_duration_seconds_bucket",
    "demo_http_requests_in_flight", "demo_orders_total", "demo_stock_level", "demo_readiness",
    "demo_build_info", "demo_telemetry_export_errors_total", "demo_loadgen_requests_total",
    "alert_sink_notifications_total", "alert_sink_alerts_total", "alert_sink_rejected_total",
    "alert_sink_stored_notifications",
}


def test_demo_registry_matches_conventions():
    assert CONVENTIONS_DEMO <= catalog.demo_metric_names()


def test_parser_finds_names_and_rejects_garbage():
    expr = 'sum(rate(a_total{x="1"}[5m])) / on() group_left b or {__name__="c"} and {__name__=~"d.*"}'
    assert catalog.metric_names_in(expr) == {"a_total", "b", "c"}
    with pytest.raises(ValueError):
        catalog.metric_names_in("sum(rate(a_total[5m])")


@pytest.mark.parametrize("where,expr", RULES, ids=[w for w, _ in RULES])
def test_rule_names_known_metrics(where, expr):
    names = catalog.metric_names_in(expr)
    unknown = names - catalog.known_metric_names()
    assert not unknown, f"{where}: unknown metrics {sorted(unknown)}"
