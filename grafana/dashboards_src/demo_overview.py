"""Dashboard 1: the demo services' golden signals, business metrics, logs and traces."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import logs, stat, statetimeline, table
from grafana_foundation_sdk.builders.common import TableSortByFieldState
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .common import (JAEGER, LOKI, PROMETHEUS, Jaeger, last_value, Layout, loki,
                     new_dashboard, prom, stack_dashboards_link, thresholds, ts)

UID = "demo-overview"

# Every request selector honours both variables; `route` is the templated route.
SEL = 'service=~"$service", route=~"$route"'
RATE = f"rate(demo_http_requests_total{{{SEL}}}[$__rate_interval])"
ERRORS = f'rate(demo_http_requests_total{{{SEL}, status_code=~"5.."}}[$__rate_interval])'
BUCKETS = f"rate(demo_http_request_duration_seconds_bucket{{{SEL}}}[$__rate_interval])"


def _quantile(q: float, ref: str, exemplar: bool = False):
    return prom(f"histogram_quantile({q}, sum by (le, service) ({BUCKETS}))",
                f"p{int(q * 100)} {{{{service}}}}", ref, exemplar=exemplar)


def build() -> dash.Dashboard:
    board = (
        new_dashboard("Demo service overview", UID,
                      "Golden signals of the demo services (shop, inventory), their business "
                      "metrics, recent logs and slowest traces. Exemplar dots on the latency "
                      "panel open the request's trace in Jaeger.",
                      ["demo", "red"], "now-30m")
        .with_variable(
            dash.QueryVariable("service").label("Service").datasource(PROMETHEUS)
            .query({"query": "label_values(demo_http_requests_total, service)", "refId": "service"})
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True)
            .current(dm.VariableOption(text="All", value="$__all", selected=True)))
        .with_variable(
            dash.QueryVariable("route").label("Route").datasource(PROMETHEUS)
            .query({"query": 'label_values(demo_http_requests_total{service=~"$service"}, route)',
                    "refId": "route"})
            # Probes and the fault switch are not user traffic (as in the recording rules).
            .regex("/^(?!/(healthz|readyz|metrics|admin)).*/")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True)
            .current(dm.VariableOption(text="All", value="$__all", selected=True)))
        .link(dash.DashboardLink("Traces").type(dm.DashboardLinkType.LINK)
              .url('/explore?left={"datasource":"jaeger","queries":[{"refId":"A","queryType":"search",'
                   '"service":"$service"}]}')
              .icon("external link")
              .tooltip("Search this service's traces (Jaeger datasource, in Explore)"))
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
               "s", _quantile(0.5, "A"), _quantile(0.95, "B"), _quantile(0.99, "C", exemplar=True)),
            12, 9)
    lay.add(ts("Requests in flight", "Concurrent requests per service.", "short",
               prom('sum by (service) (demo_http_requests_in_flight{service=~"$service"})', "{{service}}")),
            12, 9)

    lay.row("Span metrics (from traces, via the collector)")
    lay.add(ts("Server spans per second", "RED rate computed by the collector's span_metrics "
               "connector from the traces themselves; should match the request rate above.", "reqps",
               prom('sum by (service_name, span_name) (rate(traces_span_metrics_calls_total'
                    '{service_name=~"$service", span_kind="SPAN_KIND_SERVER"}[$__rate_interval]))',
                    "{{service_name}} {{span_name}}")), 12, 8)
    lay.add(ts("Server span p95", "95th percentile span duration from the span metrics histogram.", "ms",
               prom('histogram_quantile(0.95, sum by (le, service_name) (rate('
                    'traces_span_metrics_duration_milliseconds_bucket{service_name=~"$service", '
                    'span_kind="SPAN_KIND_SERVER"}[$__rate_interval])))', "p95 {{service_name}}")), 12, 8)

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

    lay.row("Logs and traces")
    lay.add(ts("Log lines per second", "Log records Loki received from the selected services "
               "(over OTLP: service.name becomes the service_name label).", "short",
               loki('sum by (service_name) (count_over_time({service_name=~"$service"}[$__auto]))',
                    "{{service_name}}")).datasource(LOKI).unit("short"), 24, 6)
    lay.add(logs.Panel().title("Recent logs").datasource(LOKI)
            .description("Latest log records of the selected services. Expand a line: its "
                         "trace_id (structured metadata) links to the trace in Jaeger.")
            .show_time(True).wrap_log_message(True).enable_log_details(True)
            .sort_order(cm.LogsSortOrder.DESCENDING)
            .with_target(loki('{service_name=~"$service"}', max_lines=200)), 24, 10)
    lay.add(table.Panel().title("Slowest of the latest 100 traces: $service").datasource(JAEGER)
            .description("Jaeger's trace search for the service (newest first, as Jaeger returns "
                         "them), sorted here by duration. Click a trace ID to open it; from a span, "
                         "the logs link opens its logs in Loki.")
            .repeat("service").repeat_direction("h").max_per_row(2)
            .sort_by([TableSortByFieldState().display_name("Duration").desc(True)])
            .with_target(Jaeger("$service", limit=100)), 12, 10)
    return board
