"""Dashboard: any service that sends traces over OTLP, the demo's and yours alike.

Everything here comes from what the stack derives from the telemetry itself, not from a
service's own metrics: the collector's span_metrics connector turns each service's spans
into rate, errors and latency (traces_span_metrics_*, by service_name), Loki holds the
logs it sent (service_name label), Jaeger its traces. So an app that only sets
OTEL_EXPORTER_OTLP_ENDPOINT shows up here, with nothing to configure.
"""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import logs, stat, table
from grafana_foundation_sdk.builders.common import TableSortByFieldState
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .common import (JAEGER, LOKI, PROMETHEUS, Jaeger, Layout, last_value, latency_quantiles, loki, multi_variable,
                     new_dashboard, prom, stack_dashboards_link, thresholds, ts)

UID = "services"

# Spans that answer a caller (a request served, a message consumed): a service's own work.
SERVED = 'service_name=~"$service", span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"'
CALLS = f"rate(traces_span_metrics_calls_total{{{SERVED}}}[$__rate_interval])"
ERRORS = f'rate(traces_span_metrics_calls_total{{{SERVED}, status_code="STATUS_CODE_ERROR"}}[$__rate_interval])'
BUCKETS = f"rate(traces_span_metrics_duration_milliseconds_bucket{{{SERVED}}}[$__rate_interval])"



def build() -> dash.Dashboard:
    board = (
        new_dashboard("Service overview", UID,
                      "Every service that sends traces over OTLP (the demo's and yours): rate, "
                      "errors and latency from the collector's span metrics, its logs and its "
                      "slowest traces. Exemplar dots on the latency panel open a trace.",
                      ["services", "red"], "now-30m")
        .with_variable(multi_variable("service", "Service",
                                      "label_values(traces_span_metrics_calls_total, service_name)"))
        .link(dash.DashboardLink("Traces").type(dm.DashboardLinkType.LINK)
              .url('/explore?left={"datasource":"jaeger","queries":[{"refId":"A","queryType":"search",'
                   '"service":"$service"}]}')
              .icon("external link")
              .tooltip("Search this service's traces (Jaeger datasource, in Explore)"))
        .link(stack_dashboards_link())
    )
    lay = Layout(board)

    lay.row("Golden signals (from the service's spans)")
    lay.add(stat.Panel().reduce_options(last_value()).title("Requests").unit("reqps").datasource(PROMETHEUS)
            .description("Server and consumer spans per second: requests the selected services served.")
            .with_target(prom(f"sum({CALLS})", "req/s")).graph_mode(cm.BigValueGraphMode.AREA), 8, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("Error ratio").unit("percentunit").decimals(2)
            .datasource(PROMETHEUS)
            .description("Share of those spans whose status is Error.")
            .thresholds(thresholds((None, "green"), (0.01, "orange"), (0.05, "red")))
            # The error series exists once an error happened: `or vector(0)` shows 0 % meanwhile.
            .with_target(prom(f"(sum({ERRORS}) or vector(0)) / sum({CALLS})", "errors", instant=True))
            .color_mode(cm.BigValueColorMode.BACKGROUND), 8, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("p95 latency").unit("ms").decimals(1)
            .datasource(PROMETHEUS)
            .description("95th percentile duration of those spans.")
            .thresholds(thresholds((None, "green"), (500, "orange"), (1000, "red")))
            .with_target(prom(f"histogram_quantile(0.95, sum by (le) ({BUCKETS}))", "p95", instant=True))
            .color_mode(cm.BigValueColorMode.VALUE), 8, 4)

    lay.add(ts("Requests by operation", "Server and consumer spans per second, by service and span name.",
               "reqps", prom(f"sum by (service_name, span_name) ({CALLS})", "{{service_name}} {{span_name}}")),
            12, 8)
    lay.add(ts("Error ratio", "Spans with status Error / all served spans, per service.", "percentunit",
               prom(f"(sum by (service_name) ({ERRORS}) or 0 * sum by (service_name) ({CALLS}))"
                    f" / sum by (service_name) ({CALLS})", "{{service_name}}"))
            .min(0), 12, 8)
    lay.add(ts("Latency p50 / p95 / p99 (with exemplars)",
               "Served span duration quantiles from the span metrics histogram. The dots are "
               "exemplars: each carries the trace_id of a real span; click one to open its trace.",
               "ms", *latency_quantiles(BUCKETS, "service_name")), 12, 9)
    lay.add(ts("Spans by kind", "Every span the service sent, per second, by kind (client calls, "
               "internal work, served requests).", "ops",
               prom('sum by (service_name, span_kind) (rate(traces_span_metrics_calls_total'
                    '{service_name=~"$service"}[$__rate_interval]))', "{{service_name}} {{span_kind}}")), 12, 9)

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
