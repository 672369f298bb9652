"""Dashboard 3: alerts now (Alertmanager), alert history (Prometheus ALERTS) and SLO burn rates."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, statetimeline, table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .common import (ALERTMANAGER_NAME, PROMETHEUS, last_value, Layout, new_dashboard, prom,
                     stack_dashboards_link, threshold_lines, thresholds, ts)

UID = "alerts"
RI = "$__rate_interval"
# Availability SLO of prometheus/rules/demo-alerts.yml: 99.9 %, so the error budget is 0.001.
# Burn rate = error ratio / budget; the page/ticket thresholds are the SRE workbook's.
ERROR_BUDGET = 0.001
BURN_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]


def build() -> dash.Dashboard:
    board = (
        new_dashboard("Alerts", UID,
                      "What is firing now (straight from Alertmanager), what fired before "
                      "(Prometheus' ALERTS series), what reached the alert sink, and how fast "
                      "each demo service burns its error budget.",
                      ["alerts", "slo"], "now-3h")
        .link(stack_dashboards_link())
    )
    lay = Layout(board)

    lay.row("Firing now")
    # Grafana's alert groups panel reads the Alertmanager API through the datasource
    # (by name). The SDK has no builder for this panel type, so it uses the generic one.
    lay.add(dash.Panel().type("alertGroups").title("Alertmanager: alert groups")
            .description("Alerts Alertmanager holds right now, grouped as it routes them. "
                         "Empty means nothing is firing.")
            .options({"alertmanager": ALERTMANAGER_NAME, "expandAll": True, "labels": ""}), 12, 10)
    lay.add(stat.Panel().title("Alerts held by Alertmanager").datasource(PROMETHEUS)
            .description("alertmanager_alerts by state: active (being notified), suppressed "
                         "(silenced or inhibited), unprocessed.")
            .text_mode(cm.BigValueTextMode.VALUE_AND_NAME).graph_mode(cm.BigValueGraphMode.AREA)
            .reduce_options(last_value())
            .with_target(prom("sum by (state) (alertmanager_alerts)", "{{state}}")), 6, 5)
    lay.add(stat.Panel().title("Firing in Prometheus").datasource(PROMETHEUS)
            .description("Alert rules currently firing (pending ones are not counted).")
            .thresholds(thresholds((None, "green"), (1, "red")))
            .color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE)
            .reduce_options(last_value())
            # `or vector(0)`: ALERTS has no series at all while nothing fires.
            .with_target(prom('count(ALERTS{alertstate="firing"}) or vector(0)', "firing",
                              instant=True)), 6, 5)
    lay.add(stat.Panel().title("Alert sink: stored notifications").datasource(PROMETHEUS)
            .description("Notifications the webhook receiver (alert-sink, UI on :8090) keeps.")
            .reduce_options(last_value())
            .with_target(prom("sum(alert_sink_stored_notifications)", "stored")), 6, 5)
    lay.add(stat.Panel().title("Rules loaded").datasource(PROMETHEUS)
            .description("Alerting and recording rules Prometheus has loaded.")
            .reduce_options(last_value())
            .with_target(prom("sum(prometheus_rule_group_rules)", "rules", instant=True)), 6, 5)

    lay.row("History")
    lay.add(statetimeline.Panel().title("Alert states").datasource(PROMETHEUS)
            .description("Every alert rule that was pending (orange) or firing (red) in the "
                         "time range, from Prometheus' ALERTS series.")
            .mappings([dm.ValueMap(options={
                "1": dm.ValueMappingResult(text="pending", color="orange", index=0),
                "2": dm.ValueMappingResult(text="firing", color="red", index=1)})])
            .with_target(prom('max by (alertname, service) ('
                              '2 * ALERTS{alertstate="firing"} or ALERTS{alertstate="pending"})',
                              "{{alertname}} {{service}}")), 24, 8)
    lay.add(table.Panel().title("Active alerts and since when").datasource(PROMETHEUS)
            .description("ALERTS_FOR_STATE holds when each active alert became active; "
                         "the value shown is how long ago that was.")
            .unit("s")
            .with_target(prom("time() - max by (alertname, service, severity) (ALERTS_FOR_STATE)",
                              "", instant=True, table=True)), 12, 8)
    lay.add(ts("Notifications received by the alert sink", "What Alertmanager delivered to "
               "the webhook receiver, by receiver and status (firing/resolved).", "short",
               prom(f"sum by (receiver, status) (increase(alert_sink_notifications_total[{RI}]))",
                    "{{receiver}} {{status}}")), 12, 8)

    lay.row("SLO: availability 99.9 %")
    lay.add(ts("Error budget burn rate", "Error ratio divided by the error budget (0.1 %), per "
               "window. 1 spends the 30-day budget in exactly 30 days. The fast-burn alert "
               "pages at 14.4 (1h and 5m) or 6 (6h and 30m); the slow one tickets at 3 (1d "
               "and 2h) or 1 (3d and 6h).", "short",
               *[prom(f"service:demo_http_error_ratio:rate{w} / {ERROR_BUDGET}",
                      f"{{{{service}}}} {w}", chr(ord("A") + i)) for i, w in enumerate(BURN_WINDOWS)])
            .thresholds(thresholds((None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")))
            .thresholds_style(threshold_lines()), 16, 9)
    lay.add(stat.Panel().title("Availability (1h)").datasource(PROMETHEUS).unit("percentunit")
            .decimals(3).description("Share of user requests without a 5xx over the last hour.")
            .thresholds(thresholds((None, "red"), (0.999, "green")))
            .color_mode(cm.BigValueColorMode.VALUE).text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(last_value())
            .with_target(prom("1 - service:demo_http_error_ratio:rate1h", "{{service}}")), 8, 9)
    lay.add(ts("p95 latency vs 500 ms objective", "The recorded p95 per service; "
               "DemoHighLatencyP95 fires above the line.", "s",
               prom('service_quantile:demo_http_request_duration_seconds:rate5m{quantile="0.95"}',
                    "{{service}}"))
            .thresholds(thresholds((None, "green"), (0.5, "red")))
            .thresholds_style(threshold_lines()), 24, 8)
    return board
