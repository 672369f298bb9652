"""Watching what you run: the demo off, the `containers` and `host` parts on, your target and
your rule in your places, a service that only sends OTLP. In order: your places (a target
scraped without a restart, a rule loaded and firing), a service of yours on the service
dashboard, your host's series, a container of yours (its stats, and every log line once,
labelled by its name); then, 15 minutes after the start, nothing paged but the Watchdog;
last, the demo switched on beside both parts, the memory of the whole stack, and the demo
switched off again (its containers removed, as `make up` does)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import pytest
import requests

from drills import scorecard
from grafana.panel_queries import load_dashboards, dashboard_queries, substitute
from tests.e2e import clients, remote
from tests.e2e import stack as st
from tests.e2e.docker_stats import MemorySampler
from tests.e2e.polling import poll_until
from tests.tooling import REPO, image

from .conftest import FIGURES, REMOTE_CONTAINERS

pytestmark = [pytest.mark.e2e, pytest.mark.signal("own")]
RUN = secrets.token_hex(3)
# With the demo off for this long, only the Watchdog may have paged.
QUIET_S = 15 * 60
# Your rule below fires on purpose: it is yours, not the stack's.
YOURS = "MineIsScraped"
# The whole stack, both parts on, at the demo's load (issue: under 1.5 GiB).
MEMORY_BOUND_MIB = 1536
PARTS = {"demo": ("shop", "inventory", "loadgen"), "host": ("node-exporter",), "containers": ("telegraf",)}


def prometheus_started() -> float:
    return float(clients.prom_query('process_start_time_seconds{job="prometheus"}')[0]["value"][1])


def test_a_target_in_your_folder_is_scraped_within_a_minute_without_a_restart(own: st.Stack) -> None:
    started = prometheus_started()
    (own.places / "prometheus/local/targets/mine.yml").write_text(
        "# yours: a target group, as prometheus/local/README.md shows\n"
        "- targets: [node-exporter:9100]\n  labels: {job: mine}\n")
    t0 = time.monotonic()
    poll_until(lambda: clients.prom_query('up{job="mine"} == 1'), 60,
               "the target in prometheus/local/targets/ is scraped and up", interval=2)
    FIGURES["your target scraped after"] = f"{time.monotonic() - t0:.0f} s, no restart, no reload"
    assert prometheus_started() == started, "Prometheus restarted to pick up the target"


def test_a_rule_in_your_folder_is_loaded_by_a_reload_and_fires(own: st.Stack) -> None:
    (own.places / "prometheus/local/rules/mine.yml").write_text(f"""\
groups:
  - name: mine
    rules:
      - alert: {YOURS}
        expr: up{{job="prometheus"}} == 1
        labels: {{severity: warning, service: mine}}
        annotations: {{summary: "yours, firing on purpose"}}
""")
    own.compose("kill", "-s", "SIGHUP", "prometheus")  # what `make reload` does
    poll_until(lambda: any(g["name"] == "mine" for g in clients.get_json("prometheus", "/api/v1/rules")["data"]["groups"]),
               60, "Prometheus loads the rule group in prometheus/local/rules/ after a reload")
    poll_until(lambda: clients.prom_query(f'ALERTS{{alertname="{YOURS}", alertstate="firing"}}'), 60,
               f"{YOURS} fires")


def telemetrygen(own: st.Stack, signal: str, *args: str) -> None:
    """telemetrygen (the collector project's load generator) in the stack's network, as an
    app of yours in a container of its own would send: OTLP/gRPC to otel-collector:4317."""
    cmd = ["docker", "run", "--rm", "--network", f"{own.project}_default", image("TELEMETRYGEN_IMAGE"), signal,
           "--otlp-endpoint", "otel-collector:4317", "--otlp-insecure", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"{' '.join(cmd)}:\n{p.stdout[-1000:]}\n{p.stderr[-2000:]}"


def test_a_service_that_only_sends_otlp_is_on_the_service_dashboard(own: st.Stack) -> None:
    name = f"own-service-{RUN}"
    # Server spans, some with an error status, for half a minute.
    telemetrygen(own, "traces", "--service", name, "--rate", "20", "--duration", "30s",
                 "--span-duration", "20ms", "--status-code", "Error")
    telemetrygen(own, "traces", "--service", name, "--rate", "20", "--duration", "30s", "--span-duration", "20ms")
    board = load_dashboards()["services.json"]
    variable = next(v for v in board["templating"]["list"] if v["name"] == "service")["query"]["query"]
    metric = variable.removeprefix("label_values(").split(",")[0]

    def listed() -> bool:
        return name in clients.get_json("prometheus", "/api/v1/label/service_name/values",
                                        params={"match[]": metric})["data"]
    poll_until(listed, 120, f"the service dashboard's variable ({variable}) lists {name}", interval=3)

    queries = [q for q in dashboard_queries(board) if q.datasource_type == "prometheus"]
    assert queries, "the service dashboard has no Prometheus query"

    def every_panel_has_data() -> bool:
        empty = [f"{q.panel}: {q.expr}" for q in queries
                 if not clients.prom_query(substitute(q.expr, {"service": name}))]
        assert not empty, f"panels without data for {name}:\n" + "\n".join(empty)
        return True
    poll_until(every_panel_has_data, 120, f"every Prometheus panel of the service dashboard shows {name}", interval=5)
    poll_until(lambda: requests.get(clients.url("jaeger", "/api/traces"), params={"service": name, "limit": 5},
                                    timeout=10).json().get("data"), 60, f"Jaeger finds traces of {name} (the traces panel)")
    FIGURES["a service that only sends OTLP"] = f"{name}: listed, {len(queries)} Prometheus panels with data, traces in Jaeger"


def test_your_host_is_in_prometheus_and_its_alerts_stay_quiet(own: st.Stack) -> None:
    def series() -> dict:
        found = {
            "root filesystem": clients.prom_query('node_filesystem_avail_bytes{job="node-exporter", mountpoint="/"}'),
            "memory": clients.prom_query('node_memory_MemAvailable_bytes{job="node-exporter"}'),
            "cpu": clients.prom_query('node_cpu_seconds_total{job="node-exporter", mode="idle"}'),
            "disk I/O": clients.prom_query('node_disk_read_bytes_total{job="node-exporter"}'),
            # The Docker bridge lives in the host's network namespace only: seeing it
            # proves the network counters are the machine's, not the exporter container's.
            "host network": clients.prom_query('node_network_receive_bytes_total{job="node-exporter", device="docker0"}'),
        }
        missing = [k for k, v in found.items() if not v]
        assert not missing, f"no node_exporter series for {missing}"
        return found
    found = poll_until(series, 90, "the host's filesystem, memory, CPU, disk and network series are in Prometheus")
    # The host alerts speak only of what this machine really is, read here on the host itself:
    # a filesystem with a quarter of its space left or more never shows in HostFilesystemWillFill
    # (pending or firing), memory with a tenth available or more never in HostMemoryPressure,
    # and a pseudo or container filesystem never at all. (A CI disk that is nearly full and
    # filling may rightly be pending.)
    rules = {r["name"]: r for g in clients.get_json("prometheus", "/api/v1/rules")["data"]["groups"]
             for r in g["rules"] if r.get("name") in ("HostFilesystemWillFill", "HostMemoryPressure")}
    assert set(rules) == {"HostFilesystemWillFill", "HostMemoryPressure"} and all(
        r["health"] == "ok" for r in rules.values()), rules
    for a in rules["HostFilesystemWillFill"]["alerts"]:
        mount = a["labels"]["mountpoint"]
        fs = os.statvfs(mount)
        assert fs.f_blocks, f"HostFilesystemWillFill for {mount}, a filesystem without blocks here: {a}"
        left = fs.f_bavail / fs.f_blocks
        assert left < 0.25 + 0.01, f"HostFilesystemWillFill for {mount}, which has {left:.0%} left here: {a}"
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines())
    mem_left = int(meminfo["MemAvailable"].split()[0]) / int(meminfo["MemTotal"].split()[0])
    if mem_left >= 0.10 + 0.01:
        assert not rules["HostMemoryPressure"]["alerts"], f"HostMemoryPressure with {mem_left:.0%} available here"
    avail = float(found["memory"][0]["value"][1])
    FIGURES["your host"] = (f"{len(found['root filesystem'])} root filesystem series, {avail / 2**30:.1f} GiB "
                            f"memory available; HostFilesystemWillFill for "
                            f"{sorted(a['labels']['mountpoint'] for a in rules['HostFilesystemWillFill']['alerts'])}, "
                            f"HostMemoryPressure for {len(rules['HostMemoryPressure']['alerts'])} instance(s)")


def stand_in_lines_stay_out(own: st.Stack) -> None:
    """The stand-in backend prints each record it gets: were its lines collected, each would
    come back as a dozen more, without end. CONTAINER_LOGS_EXCLUDE keeps them out."""
    looped = {r.resource.get("container.name") for r in remote.log_records(remote.printed(own))
              if r.resource.get("compose.service") == "remote-otlp"}
    assert not looped, f"lines of {looped} were collected despite CONTAINER_LOGS_EXCLUDE={REMOTE_CONTAINERS}"


def test_a_container_of_yours_shows_its_stats_and_every_log_line_once(own: st.Stack) -> None:
    stand_in_lines_stay_out(own)  # before a loop could starve what follows
    name, lines = f"own-probe-{RUN}", 200
    script = (f"for i in $(seq 1 {lines}); do echo \"own-probe {RUN} $i\"; done; "
              "end=$(( $(date +%s) + 90 )); while [ $(date +%s) -lt $end ]; do :; done")
    subprocess.run(["docker", "run", "-d", "--name", name, "--network", "none", "--entrypoint", "sh",
                    image("PROMETHEUS_IMAGE"), "-c", script], check=True, capture_output=True, timeout=60)
    try:
        t0 = time.monotonic()
        sel = f'{{job="telegraf", container_name="{name}"}}'
        poll_until(lambda: clients.prom_query(f'docker_container_cpu_usage_percent{sel[:-1]}, cpu="cpu-total"}} > 10')
                   and clients.prom_query(f"docker_container_mem_usage{sel}"), 60,
                   f"{name}'s CPU (busy) and memory series are in Prometheus", interval=3)
        stats_s = time.monotonic() - t0

        def arrived() -> list:
            records = [r for r in remote.log_records(remote.printed(own)) if r.body.startswith(f"own-probe {RUN} ")]
            got = sorted(int(r.body.rsplit(" ", 1)[1]) for r in records)
            assert len(set(got)) == lines, f"{len(set(got))} of {lines} lines arrived"
            return records
        records = poll_until(arrived, 120, f"all {lines} log lines of {name} reached the collector's copy", interval=3)
        numbers = [int(r.body.rsplit(" ", 1)[1]) for r in records]
        assert sorted(numbers) == list(range(1, lines + 1)), "a line arrived twice"
        labels = {r.resource.get("container.name") for r in records}
        assert labels == {name}, f"the lines are labelled {labels}, not with the container's name"
        stand_in_lines_stay_out(own)
        if "loki" in own.running():
            body = clients.inside_json(own, "loki", 3100, "/loki/api/v1/query_range", {
                "query": f'{{container_name="{name}"}} |= "own-probe {RUN} "', "limit": 5000, "since": "1h"})
            in_loki = [v[1] for s in body["data"]["result"] for v in s["values"]]
            assert sorted(in_loki) == sorted(r.body for r in records), "Loki holds other lines than were sent"
        FIGURES["a container of yours"] = (f"stats in Prometheus after {stats_s:.0f} s; {lines} of {lines} log lines, "
                                           f"each once, labelled container.name={name}"
                                           + ("" if "loki" in own.running() else " (counted at the remote copy: no Loki)"))
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def test_with_the_demo_off_nothing_pages_but_the_watchdog(own: st.Stack) -> None:
    time.sleep(max(0.0, QUIET_S - (time.time() - own.up_at)))
    absent = tuple(own.plan.missing)  # their images are missing here: that they page as down is right
    pages = [a for a in scorecard.notifications(own.target, own.up_at - 60, absent)
             if a["status"] == "firing" and a["labels"].get("alertname") not in ("Watchdog", YOURS)]
    watchdog = own.target.sink_alerts("Watchdog", "firing")
    FIGURES["demo off"] = (f"{(time.time() - own.up_at) / 60:.0f} minutes: pages other than the Watchdog: "
                           f"{len(pages)}; Watchdog notifications: {len(watchdog)}")
    assert watchdog, "the Watchdog never reached the sink: the quiet proves nothing"
    assert not pages, "with the demo off, these paged: " + "; ".join(
        f"{a['labels'].get('alertname')} {a['labels']}" for a in pages)
    assert not clients.prom_query('up{job=~"shop|inventory|loadgen"}'), "a demo target exists with the demo off"


def test_the_whole_stack_with_both_parts_and_the_demo_stays_under_its_memory_bound(own: st.Stack,
                                                                                   monkeypatch) -> None:
    monkeypatch.setenv("COMPOSE_PROFILES", "demo,containers,host")
    own.env["COMPOSE_PROFILES"] = "demo,containers,host"
    # Prometheus is recreated (its COMPOSE_PROFILES changed: it now hands out the demo's targets).
    own.compose("up", "-d", "--wait", "--no-deps", "prometheus", "inventory", "shop", "loadgen", timeout=600)
    poll_until(lambda: clients.prom_query('up{job="loadgen"} == 1'), 90, "the demo's targets are scraped")
    sampler = MemorySampler(own.project)
    sampler.start()
    time.sleep(180)  # the demo's load, both parts on, three minutes
    sampler.stop()
    peaks = sampler.report()
    stack = {svc: v for svc, v in peaks.items() if svc not in ("remote-otlp",)}
    total = sum(v["peak_mib"] for v in stack.values())
    FIGURES["peak memory by part (MiB)"] = {part: {svc: round(stack[svc]["peak_mib"]) for svc in svcs if svc in stack}
                                            for part, svcs in PARTS.items()}
    FIGURES["whole stack, demo + containers + host, sum of peaks"] = f"{total:.0f} MiB (bound {MEMORY_BOUND_MIB})"
    assert set(PARTS["host"]) | set(PARTS["containers"]) | set(PARTS["demo"]) <= set(stack), sorted(stack)
    assert total < MEMORY_BOUND_MIB, f"the stack with both parts took {total:.0f} MiB: {stack}"


def test_switching_the_demo_off_again_removes_its_containers(own: st.Stack, monkeypatch) -> None:
    """What `make up` does first (compose_info.py off): compose up alone leaves a part that
    was switched off running."""
    monkeypatch.setenv("COMPOSE_PROFILES", "containers,host")
    own.env["COMPOSE_PROFILES"] = "containers,host"
    demo = set(PARTS["demo"])
    assert demo <= own.running(), "the demo is not on: nothing to switch off"
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "compose_info.py"), "off", *own.compose_cmd],
                       capture_output=True, text=True, timeout=400, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    assert all(svc in p.stdout for svc in demo), p.stdout
    assert not demo & set(own.containers()), f"still there: {sorted(demo & set(own.containers()))}"
    assert {"prometheus", *PARTS["host"], *PARTS["containers"]} <= own.running(), own.running()
