"""Dashboard: every container on this machine, the stack's and yours, from Telegraf's view
of the Docker API (the `containers` profile): CPU, memory, network, block I/O, restarts and
status, and each container's log lines in Loki."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import logs, table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from .common import LOKI, PROMETHEUS, Layout, loki, multi_variable, new_dashboard, prom, stack_dashboards_link, ts

UID = "containers"
RI = "$__rate_interval"
SEL = 'job="telegraf", container_name=~"$container"'


def build() -> dash.Dashboard:
    board = (
        new_dashboard("Containers", UID,
                      "Every container on this machine (COMPOSE_PROFILES=containers): CPU, memory, "
                      "network, block I/O, restarts and status from the Docker API, and its log "
                      "lines in Loki (label container_name).",
                      ["containers"], "now-1h")
        .with_variable(multi_variable("container", "Container",
                                      'label_values(docker_container_mem_usage{job="telegraf"}, container_name)'))
        .link(stack_dashboards_link())
    )
    lay = Layout(board)

    lay.row("Resources")
    lay.add(ts("CPU by container", "Share of one core (100 % = a full core).", "percent",
               prom(f'sum by (container_name) (docker_container_cpu_usage_percent{{{SEL}, cpu="cpu-total"}})',
                    "{{container_name}}")), 12, 8)
    lay.add(ts("Memory by container", "Memory in use (without the page cache), as `docker stats` shows it.",
               "bytes", prom(f"sum by (container_name) (docker_container_mem_usage{{{SEL}}})", "{{container_name}}")),
            12, 8)
    lay.add(ts("Network received / sent", "Bytes per second, all of a container's interfaces.", "Bps",
               prom(f'sum by (container_name) (rate(docker_container_net_rx_bytes{{{SEL}, network="total"}}[{RI}]))',
                    "{{container_name}} in", "A"),
               prom(f'sum by (container_name) (rate(docker_container_net_tx_bytes{{{SEL}, network="total"}}[{RI}]))',
                    "{{container_name}} out", "B")), 12, 8)
    lay.add(ts("Block I/O read / written", "Bytes per second to and from disks.", "Bps",
               prom(f'sum by (container_name) (rate(docker_container_blkio_io_service_bytes_recursive_read'
                    f'{{{SEL}, device="total"}}[{RI}]))', "{{container_name}} read", "A"),
               prom(f'sum by (container_name) (rate(docker_container_blkio_io_service_bytes_recursive_write'
                    f'{{{SEL}, device="total"}}[{RI}]))', "{{container_name}} written", "B")), 12, 8)

    lay.row("Restarts and status")
    lay.add(ts("Restarts", "Restarts in the window, by container: a crash loop climbs here.", "short",
               prom(f"sum by (container_name) (changes(docker_container_status_restart_count{{{SEL}}}[$__range]))"
                    " or sum by (container_name) (0 * docker_container_status_restart_count"
                    f"{{{SEL}}})", "{{container_name}}")), 12, 8)
    lay.add(table.Panel().title("Containers now").datasource(PROMETHEUS)
            .description("Each container's status, compose project and service, restart count, and "
                         "whether the OOM killer ended it.")
            .with_target(prom(f"max by (container_name, container_status, com_docker_compose_project, "
                              f"com_docker_compose_service) (docker_container_status_restart_count{{{SEL}}})",
                              "", "A", instant=True, table=True))
            .with_target(prom(f"max by (container_name) (docker_container_status_oomkilled{{{SEL}}})",
                              "", "B", instant=True, table=True)), 12, 8)

    lay.row("Logs")
    lay.add(ts("Log lines per second", "Lines each container wrote to stdout and stderr (Loki).", "short",
               loki('sum by (container_name) (count_over_time({container_name=~"$container"}[$__auto]))',
                    "{{container_name}}")).datasource(LOKI), 24, 6)
    lay.add(logs.Panel().title("Recent log lines").datasource(LOKI)
            .description("The latest lines of the selected containers.")
            .show_time(True).wrap_log_message(True).enable_log_details(True)
            .sort_order(cm.LogsSortOrder.DESCENDING)
            .with_target(loki('{container_name=~"$container"}', max_lines=200)), 24, 10)
    return board
