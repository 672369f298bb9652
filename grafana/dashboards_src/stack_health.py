"""Dashboard 2: is the observability stack itself healthy, and is telemetry flowing through it?"""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common as cm

from .common import (OTELCOL_JOBS, PROMETHEUS, last_value, Layout, new_dashboard, prom,
                     stack_dashboards_link, thresholds, ts, up_mappings)

UID = "stack-health"
RI = "$__rate_interval"
# Collector and Jaeger count telemetry per signal under these metric-name stems.
SIGNALS = [("spans", "spans", "traces"), ("log_records", "logs", "logs"),
           ("metric_points", "metric points", "metrics")]
# Names exactly as collector 0.159.0 exposes them on :8888 and Prometheus stores them:
# its Prometheus exporter adds neither `_total` nor unit suffixes (checked on a running
# collector: otelcol_receiver_accepted_spans, otelcol_process_memory_rss).


def _received_per_signal(stem: str) -> list:
    """Receiver counters per signal, by job. A receiver's counter for a signal appears only
    with its first item (the demo sends no OTLP metrics), so each falls back to 0 for every
    running collector/Jaeger: the panel shows 0 rather than "No data"."""
    zero = f"0 * max by (job) (otelcol_process_uptime{{{OTELCOL_JOBS}}})"
    return [prom(f"sum by (job) (rate(otelcol_{stem}_{sig}{{{OTELCOL_JOBS}}}[{RI}])) or {zero}",
                 f"{{{{job}}}} {label}", chr(ord("A") + i))
            for i, (sig, label, _) in enumerate(SIGNALS)]


def _exporter_rate(kind: str, sig: str, data_type: str) -> str:
    """Rate of otelcol_exporter_<kind>_<sig> by exporter. These counters appear only with a
    first item (sent: a first success, failed: a first failure), so the rate falls back to 0
    for every exporter the queue-capacity gauge lists (it exists from start-up)."""
    zero = (f'0 * max by (job, exporter) (otelcol_exporter_queue_capacity'
            f'{{{OTELCOL_JOBS}, data_type="{data_type}"}})')
    return (f"(sum by (job, exporter) (rate(otelcol_exporter_{kind}_{sig}{{{OTELCOL_JOBS}}}[{RI}]))"
            f" or {zero})")


def _sent() -> list:
    return [prom(_exporter_rate("sent", sig, data_type), f"{{{{job}}}} {{{{exporter}}}} {label}",
                 chr(ord("A") + i))
            for i, (sig, label, data_type) in enumerate(SIGNALS)]


def _dropped() -> list:
    """Items lost at exporters per signal: send failed + enqueue failed."""
    return [prom(" + ".join(_exporter_rate(kind, sig, data_type)
                            for kind in ("send_failed", "enqueue_failed")),
                 f"{{{{job}}}} {{{{exporter}}}} {label}", chr(ord("A") + i))
            for i, (sig, label, data_type) in enumerate(SIGNALS)]


def build() -> dash.Dashboard:
    board = (
        new_dashboard("Stack health", UID,
                      "The observability stack watching itself: targets up, telemetry accepted, "
                      "refused and dropped at the collector, what reaches Prometheus, Loki and "
                      "Jaeger, exporter queues, memory and scrape durations.",
                      ["stack"], "now-30m")
        .link(stack_dashboards_link())
    )
    lay = Layout(board)

    lay.row("Scrape targets")
    lay.add(stat.Panel().title("Targets up").datasource(PROMETHEUS)
            .description("One tile per Prometheus scrape job (named after the compose service). "
                         "DOWN means Prometheus cannot scrape it.")
            .mappings(up_mappings()).thresholds(thresholds((None, "red"), (1, "green")))
            .color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE)
            .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(last_value())
            .with_target(prom("min by (job) (up)", "{{job}}", instant=True)), 24, 4)
    lay.add(ts("Scrape duration", "How long each scrape takes; close to the scrape timeout "
               "means the target is struggling.", "s",
               prom("max by (job) (scrape_duration_seconds)", "{{job}}")), 12, 8)
    lay.add(ts("Samples per scrape", "Series each target exposes (after relabelling).", "short",
               prom("sum by (job) (scrape_samples_post_metric_relabeling)", "{{job}}")), 12, 8)

    lay.row("Collector and Jaeger: telemetry in and out")
    lay.add(ts("Accepted by receivers", "Items the OTLP receivers accepted, per signal, in the "
               "collector and in Jaeger (which is built on the collector).", "short",
               *_received_per_signal("receiver_accepted")), 12, 8)
    lay.add(ts("Refused by receivers", "Items refused back to the sender (backpressure, e.g. "
               "the memory limiter). Should stay at 0.", "short",
               *_received_per_signal("receiver_refused")), 12, 8)
    lay.add(ts("Sent by exporters", "Items the exporters delivered: collector -> Jaeger, "
               "Loki, Prometheus; Jaeger -> its storage.", "short",
               *_sent()), 12, 8)
    lay.add(ts("Dropped by exporters", "Items lost at an exporter: given up after retries "
               "(send failed) or refused by a full sending queue (enqueue failed). Should stay "
               "at 0.", "short",
               *_dropped()), 12, 8)
    lay.add(ts("Exporter queue size", "Batches waiting in each exporter's sending queue; a queue "
               "near its capacity is about to drop data.", "short",
               prom(f"max by (job, exporter) (otelcol_exporter_queue_size{{{OTELCOL_JOBS}}})",
                    "{{job}} {{exporter}} size", "A"),
               prom(f"max by (job, exporter) (otelcol_exporter_queue_capacity{{{OTELCOL_JOBS}}})",
                    "{{job}} {{exporter}} capacity", "B")), 24, 8)

    lay.row("Backends: what arrives")
    lay.add(ts("Prometheus samples appended", "Samples written to the TSDB head per second: "
               "scrapes plus the span metrics arriving over OTLP.", "short",
               prom(f"sum by (type) (rate(prometheus_tsdb_head_samples_appended_total[{RI}]))",
                    "{{type}}")), 8, 8)
    lay.add(ts("Prometheus head series", "Active series in the TSDB head.", "short",
               prom("prometheus_tsdb_head_series", "series")), 8, 8)
    lay.add(ts("Loki lines in", "Log lines the Loki distributor received per second, by push "
               "format (the demo's logs arrive as otlp).", "short",
               prom(f"sum by (format) (rate(loki_distributor_lines_received_total[{RI}]))",
                    "{{format}}")), 8, 8)
    # Alertmanager pre-creates these counters for every integration it knows (email, slack,
    # ...); the stack only uses webhooks (to the alert sink), so show those.
    lay.add(ts("Alertmanager webhook notifications", "Notifications Alertmanager sent to the "
               "alert sink's webhook, and failed ones by reason.", "short",
               prom(f'sum(rate(alertmanager_notifications_total{{integration="webhook"}}[{RI}]))',
                    "sent", "A"),
               prom(f'sum by (reason) (rate(alertmanager_notifications_failed_total'
                    f'{{integration="webhook"}}[{RI}]))', "failed: {{reason}}", "B")), 12, 8)
    lay.add(ts("Prometheus rule evaluation", "Rule group evaluation time versus interval; "
               "failures mean a broken rule.", "s",
               prom("max by (rule_group) (prometheus_rule_group_last_duration_seconds)",
                    "{{rule_group}}", "A"),
               prom(f"sum(rate(prometheus_rule_evaluation_failures_total[{RI}]))",
                    "evaluation failures/s", "B")), 12, 8)

    lay.row("Resources")
    lay.add(ts("Memory (RSS) per component", "Resident memory of each stack component. The "
               "collector and Jaeger report it as otelcol_process_memory_rss.", "bytes",
               prom("sum by (job) (process_resident_memory_bytes)", "{{job}}", "A"),
               prom(f"sum by (job) (otelcol_process_memory_rss{{{OTELCOL_JOBS}}})",
                    "{{job}}", "B")), 12, 8)
    lay.add(ts("CPU per component", "CPU cores used by each stack component.", "short",
               prom(f"sum by (job) (rate(process_cpu_seconds_total[{RI}]))", "{{job}}", "A"),
               prom(f"sum by (job) (rate(otelcol_process_cpu_seconds{{{OTELCOL_JOBS}}}[{RI}]))",
                    "{{job}}", "B")), 12, 8)
    return board
