"""Dashboard: the demo system's own metrics (prometheus-client, with exemplars) and its
business metrics. Its traces, logs and span-metric RED are on the Service overview, as any
service's (services.py)."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, statetimeline
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .common import (PROMETHEUS, Layout, last_value, latency_quantiles, multi_variable, new_dashboard, prom,
                     stack_dashboards_link, thresholds, ts)

UID = "demo-overview"

# Every request selector honours both variables; `route` is the templated route.
SEL = 'service=~"$service", route=~"$route"'
RATE = f"rate(demo_http_requests_total{{{SEL}}}[$__rate_interval])"
ERRORS = f'rate(demo_http_requests_total{{{SEL}, status_code=~"5.."}}[$__rate_interval])'
BUCKETS = f"rate(demo_http_request_duration_seconds_bucket{{{SEL}}}[$__rate_interval])"



def build() -> dash.Dashboard:
    board = (
        new_dashboard("Demo system", UID,
                      "The demo services' own metrics (shop, inventory: prometheus-client, with "
                      "exemplars), orders, stock, the load generator and readiness. Their traces "
                      "and logs are on the Service overview, as any service's.",
                      ["demo", "red"], "now-30m")
        .with_variable(multi_variable("service", "Service",
                                      "label_values(demo_http_requests_total, service)"))
        # Probes and the fault switch are not user traffic (as in the recording rules).
        .with_variable(multi_variable("route", "Route",
                                      'label_values(demo_http_requests_total{service=~"$service"}, route)',
                                      regex="/^(?!/(healthz|readyz|metrics|admin)).*/"))
        .link(stack_dashboards_link())
    )
    lay = Layout(board)

    lay.row("Golden signals")
    lay.add(stat.Panel().reduce_options(last_value()).title("Request rate").unit("reqps").datasource(PROMETHEUS)
            .description("Requests per second served by the selected services and routes.")
            .with_target(prom(f"sum({RATE})", "req/s")).graph_mode(cm.BigValueGraphMode.AREA), 6, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("Error ratio").unit("percentunit").decimals(2).datasource(PROMETHEUS)
            .description("Share of requests answered with a 5xx status.")
            .thresholds(thresholds((None, "green"), (0.01, "orange"), (0.05, "red")))
            # prometheus-client creates a 5xx series only once one happened: `or vector(0)`
            # shows 0 % instead of "No data" while all is well.
            .with_target(prom(f"(sum({ERRORS}) or vector(0)) / sum({RATE})", "errors", instant=True))
            .color_mode(cm.BigValueColorMode.BACKGROUND), 6, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("p95 latency").unit("s").decimals(3).datasource(PROMETHEUS)
            .description("95th percentile request duration across the selection.")
            .thresholds(thresholds((None, "green"), (0.5, "orange"), (1, "red")))
            .with_target(prom(f"histogram_quantile(0.95, sum by (le) ({BUCKETS}))", "p95", instant=True))
            .color_mode(cm.BigValueColorMode.VALUE), 6, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("In flight").unit("short").datasource(PROMETHEUS)
            .description("Requests being served right now.")
            .with_target(prom('sum(demo_http_requests_in_flight{service=~"$service"})', "in flight",
                              instant=True)), 6, 4)

    lay.add(ts("Request rate by route", "Requests per second by service and templated route.", "reqps",
               prom(f"sum by (service, route) ({RATE})", "{{service}} {{route}}")), 12, 8)
    lay.add(ts("Error ratio", "5xx responses / all responses, per service.", "percentunit",
               prom(f"(sum by (service) ({ERRORS}) or 0 * sum by (service) ({RATE}))"
                    f" / sum by (service) ({RATE})", "{{service}}"))
            .min(0), 12, 8)
    lay.add(ts("Latency p50 / p95 / p99 (with exemplars)",
               "Request duration quantiles from the histogram. The dots are exemplars: each "
               "carries the trace_id of a real request; click one to open its trace in Jaeger.",
               "s", *latency_quantiles(BUCKETS, "service")),
            12, 9)
    lay.add(ts("Requests in flight", "Concurrent requests per service.", "short",
               prom('sum by (service) (demo_http_requests_in_flight{service=~"$service"})', "{{service}}")),
            12, 9)

    lay.row("Business")
    lay.add(ts("Orders by result", "Checkout outcomes at the shop: placed, rejected, failed.", "ops",
               prom("sum by (result) (rate(demo_orders_total[$__rate_interval]))", "{{result}}")), 8, 8)
    lay.add(ts("Stock level", "Items left in the inventory store.", "short",
               prom("sum by (item) (demo_stock_level)", "{{item}}")), 8, 8)
    lay.add(ts("Load generator", "Requests the load generator sent, by endpoint and outcome.", "reqps",
               prom("sum by (endpoint, outcome) (rate(demo_loadgen_requests_total[$__rate_interval]))",
                    "{{endpoint}} {{outcome}}")), 8, 8)
    lay.add(statetimeline.Panel().title("Readiness checks").datasource(PROMETHEUS)
            .description("Each service's readiness checks (1 ready, 0 not ready).")
            .mappings([dm.ValueMap(options={
                "0": dm.ValueMappingResult(text="not ready", color="red", index=0),
                "1": dm.ValueMappingResult(text="ready", color="green", index=1)})])
            .with_target(prom('min by (service, check) (demo_readiness{service=~"$service"})',
                              "{{service}} {{check}}")), 12, 7)
    lay.add(ts("Telemetry export errors", "Spans or log records the demo's OTel SDK failed to "
               "export; non-zero means the collector is unreachable or refusing.", "short",
               prom('sum by (service, signal) (increase(demo_telemetry_export_errors_total'
                    '{service=~"$service"}[$__rate_interval]))', "{{service}} {{signal}}")), 12, 7)

    return board
