"""Dashboard: this machine, from node_exporter (the `host` profile): CPU, memory, disk I/O,
network and how full each filesystem is, with the trend the HostFilesystemWillFill alert
extrapolates."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common as cm

from .common import PROMETHEUS, Layout, last_value, new_dashboard, prom, stack_dashboards_link, thresholds, ts

UID = "host"
RI = "$__rate_interval"
NODE = 'job="node-exporter"'
# The filesystems that hold data (node-exporter's command leaves out pseudo and container ones).
FS = f'{NODE}, fstype!=""'


def build() -> dash.Dashboard:
    board = (
        new_dashboard("Host", UID,
                      "This machine, read by node_exporter (COMPOSE_PROFILES=host): CPU, memory, "
                      "disks, network, and how full each filesystem is going to be.",
                      ["host"], "now-6h")
        .link(stack_dashboards_link())
    )
    lay = Layout(board)

    lay.row("Now")
    lay.add(stat.Panel().reduce_options(last_value()).title("CPU busy").unit("percentunit").datasource(PROMETHEUS)
            .description("Share of all cores' time not idle.")
            .thresholds(thresholds((None, "green"), (0.7, "orange"), (0.9, "red")))
            .with_target(prom(f'1 - avg(rate(node_cpu_seconds_total{{{NODE}, mode="idle"}}[{RI}]))', "busy")),
            6, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("Memory available").unit("percentunit")
            .datasource(PROMETHEUS)
            .description("MemAvailable / MemTotal: free plus what the kernel reclaims at once. "
                         "HostMemoryPressure pages under 10 %.")
            .thresholds(thresholds((None, "red"), (0.1, "orange"), (0.2, "green")))
            .with_target(prom(f"node_memory_MemAvailable_bytes{{{NODE}}} / node_memory_MemTotal_bytes{{{NODE}}}",
                              "available", instant=True)), 6, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("Fullest filesystem").unit("percentunit")
            .datasource(PROMETHEUS)
            .description("The highest share used of any filesystem.")
            .thresholds(thresholds((None, "green"), (0.75, "orange"), (0.9, "red")))
            .with_target(prom(f"max(1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})",
                              "used", instant=True)), 6, 4)
    lay.add(stat.Panel().reduce_options(last_value()).title("Load (1m) per core").unit("short").decimals(2)
            .datasource(PROMETHEUS)
            .description("The 1-minute load average divided by the number of cores.")
            .with_target(prom(f'node_load1{{{NODE}}} / count(node_cpu_seconds_total{{{NODE}, mode="idle"}})',
                              "load", instant=True))
            .color_mode(cm.BigValueColorMode.VALUE), 6, 4)

    lay.row("CPU and memory")
    lay.add(ts("CPU by mode", "Seconds per second the cores spend in each mode (idle left out).", "short",
               prom(f'sum by (mode) (rate(node_cpu_seconds_total{{{NODE}, mode!="idle"}}[{RI}]))', "{{mode}}")),
            12, 8)
    lay.add(ts("Memory", "Total, available, and what is free outright.", "bytes",
               prom(f"node_memory_MemTotal_bytes{{{NODE}}}", "total", "A"),
               prom(f"node_memory_MemAvailable_bytes{{{NODE}}}", "available", "B"),
               prom(f"node_memory_MemFree_bytes{{{NODE}}}", "free", "C")), 12, 8)
    lay.add(ts("Major page faults", "Pages read back from disk per second: sustained, it means the "
               "machine swaps or thrashes.", "short",
               prom(f"rate(node_vmstat_pgmajfault{{{NODE}}}[{RI}])", "major faults/s")), 12, 7)
    lay.add(ts("Load average", "1, 5 and 15 minutes.", "short",
               prom(f"node_load1{{{NODE}}}", "1m", "A"), prom(f"node_load5{{{NODE}}}", "5m", "B"),
               prom(f"node_load15{{{NODE}}}", "15m", "C")), 12, 7)

    lay.row("Disks and network")
    lay.add(ts("Disk read / written", "Bytes per second per disk.", "Bps",
               prom(f"sum by (device) (rate(node_disk_read_bytes_total{{{NODE}}}[{RI}]))", "{{device}} read", "A"),
               prom(f"sum by (device) (rate(node_disk_written_bytes_total{{{NODE}}}[{RI}]))", "{{device}} written",
                    "B")), 12, 8)
    lay.add(ts("Disk busy", "Share of time each disk had I/O in flight.", "percentunit",
               prom(f"rate(node_disk_io_time_seconds_total{{{NODE}}}[{RI}])", "{{device}}")).max(1), 12, 8)
    lay.add(ts("Network received / sent", "Bytes per second per interface of the machine (not the "
               "containers' virtual ones).", "Bps",
               prom(f'sum by (device) (rate(node_network_receive_bytes_total{{{NODE}, device!~"lo|veth.*|docker.*|br-.*"}}[{RI}]))',
                    "{{device}} in", "A"),
               prom(f'sum by (device) (rate(node_network_transmit_bytes_total{{{NODE}, device!~"lo|veth.*|docker.*|br-.*"}}[{RI}]))',
                    "{{device}} out", "B")), 24, 8)

    lay.row("Filesystems")
    lay.add(ts("Filesystem used", "Share used per mount point.", "percentunit",
               prom(f"1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}}",
                    "{{mountpoint}}")).min(0).max(1), 12, 8)
    lay.add(ts("Filesystem fill: space left, and in 24 h at the last 6 hours' rate",
               "What HostFilesystemWillFill extrapolates: below 0 means full within a day.", "bytes",
               prom(f"node_filesystem_avail_bytes{{{FS}}}", "{{mountpoint}} now", "A"),
               prom(f"predict_linear(node_filesystem_avail_bytes{{{FS}}}[6h], 24 * 3600)", "{{mountpoint}} in 24 h",
                    "B")), 12, 8)
    return board
