"""Accelerated fill: with small bounds set through the same env settings a user would set,
telemetrygen pushes past them, and every store keeps its bound: it evicts (or refuses)
its oldest data, keeps accepting new data, stays under its mem_limit, and the stack
stays healthy. The same run shows the cardinality guards: span names beyond the series
limit land in the overflow series, pushed points keep at most 16 attributes.

Its own compose project (obs-bounds, the benchmark's overlay for telemetrygen), a few
minutes in all."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import urllib.parse

import pytest

from bench import probes
from bench.project import Project
from bench.resources import Stats
from scripts import bounds, compose_info
from tests.e2e import stack as st
from tests.e2e.polling import poll_until
from tests.tooling import require_image

pytestmark = [pytest.mark.e2e, pytest.mark.signal("bounds")]
NEEDED = ("OTELCOL_IMAGE", "TELEMETRYGEN_IMAGE", "PROMETHEUS_IMAGE", "JAEGER_IMAGE")
MiB = 1024 * 1024
# The small bounds, through the settings README's "Bounds" table names.
SMALL = {
    "OTELCOL_QUEUE_MAX_BYTES": str(4 * MiB),
    "OTELCOL_SPAN_METRICS_MAX_SERIES": "20",
    "JAEGER_TRACES_TTL": "1m",
    "PROMETHEUS_RETENTION_TIME": "3m",
    "PROMETHEUS_RETENTION_SIZE": "64MB",
}
SERVICES = ["prometheus", "jaeger", "volume-init", "otel-collector"]
FIGURES: dict = st.MEASUREMENTS.setdefault("bounds", {})


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    for var in NEEDED:
        require_image(var)
    env = {"COMPOSE_PROJECT_NAME": "obs-bounds", **SMALL,
           **{k: v for k, v in os.environ.items() if k.endswith("_IMAGE")}}
    # Prometheus cuts a block every minute here (2h normally), so retention has blocks to
    # drop within the test; the rest of its command line is the stack's.
    overlay = tmp_path_factory.mktemp("bounds") / "blocks.yml"
    overlay.write_text("services: {}\n")
    p = Project(env, keep=False, extra_files=[overlay], name="obs-bounds")
    command = bounds.config(p.cmd)["services"]["prometheus"]["command"]
    overlay.write_text(json.dumps({"services": {"prometheus": {"command": [
        *command, "--storage.tsdb.min-block-duration=1m", "--storage.tsdb.max-block-duration=1m"]}}}))
    p.up(SERVICES)
    # Metric load for the whole module: Prometheus has blocks to drop by its last test.
    stop = threading.Event()

    def metrics_load() -> None:
        while not stop.is_set():
            generate(p, "metrics", "--duration=10s", "--rate=200", "--workers=5", "--unique-timeseries",
                     "--metric-type=Sum", "--service=fill-metrics")

    loader = threading.Thread(target=metrics_load, daemon=True)
    stats = Stats(p.name)
    stats.poll()
    stats.start()
    loader.start()
    p.stats = stats
    try:
        yield p
    finally:
        stop.set()
        loader.join(60)
        stats.stop(1.0)
        p.down()


def generate(project: Project, *args: str, give_up_s: float = 120) -> None:
    """One telemetrygen run. A generator whose collector refuses data retries its last
    batches at shutdown: after `give_up_s` it is removed (what it sent is what counts)."""
    name = f"{project.name}-gen-{secrets.token_hex(3)}"
    try:
        project.compose("run", "--rm", "--no-deps", "--name", name, "telemetrygen", *args, "--otlp-insecure",
                        "--otlp-endpoint=otel-collector:4317", timeout=give_up_s, check=False)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def prom(project: Project, expr: str) -> float:
    return probes.instant_query(project, "prometheus", expr)


def test_span_names_beyond_the_limit_go_to_the_overflow_series(project: Project) -> None:
    generate(project, "traces", "--traces=50", "--child-spans=60", "--rate=1000", "--service=cardinality")
    expr = 'count(traces_span_metrics_calls_total{service_name="cardinality", otel_metric_overflow!="true"})'

    def split() -> tuple[float, float]:
        kept = prom(project, expr)
        overflow = prom(project, 'sum(traces_span_metrics_calls_total{job="cardinality", otel_metric_overflow="true"})')
        assert overflow > 0, f"no overflow series yet ({kept} series kept)"
        return kept, overflow

    kept, overflow = poll_until(split, 120, "span metrics of 61 span names show the overflow series", interval=5)
    FIGURES["span metrics: 61 span names, limit 20"] = f"{kept:.0f} series kept, {overflow:.0f} calls overflowed"
    assert kept <= int(SMALL["OTELCOL_SPAN_METRICS_MAX_SERIES"]), kept


def test_pushed_points_keep_at_most_16_attributes(project: Project) -> None:
    run = secrets.token_hex(4)
    attributes = [f'--telemetry-attributes=a{i:02}="{"x" * 300}"' for i in range(30)]
    generate(project, "metrics", "--metrics=5", "--rate=100", "--metric-type=Sum", f'--telemetry-attributes=bench.run="{run}"',
             *attributes)

    def labels() -> dict:
        body = json.loads(probes.get(project.url("prometheus", 9090) + "/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": 'gen_total{job="telemetrygen"}'})))
        assert body["data"], "no gen_total series yet"
        return body["data"][0]

    series = poll_until(labels, 60, "the pushed metric reaches Prometheus", interval=3)
    # The point's own attributes: what is left of the 31 sent (30 of 300 characters and
    # bench.run), beside the labels the push itself gives a series.
    attrs = {k: v for k, v in series.items()
             if k not in ("__name__", "job", "instance") and not k.startswith("otel_scope_")}
    long = [v for k, v in attrs.items() if k.startswith("a") and k[1:].isdigit()]
    FIGURES["pushed point with 31 attributes of 300 chars"] = (f"{len(attrs)} attribute labels kept, "
                                                             f"longest {max(map(len, attrs.values()), default=0)}")
    # Exactly the limit: fewer would mean the attributes never arrived to be cut.
    assert len(attrs) == 16, f"{len(attrs)} attribute labels kept of 31: {sorted(attrs)}"
    assert len(long) >= 15 and all(len(v) == 256 for v in long), f"lengths {sorted(map(len, long))}: cut to 256?"


def collector(project: Project) -> dict[str, float]:
    return probes.counters(project, "otel-collector")


def test_the_collector_queue_stays_in_its_bytes_bound(project: Project) -> None:
    project.compose("stop", "jaeger")
    try:
        generate(project, "traces", "--duration=15s", "--rate=4000", "--workers=2", "--child-spans=9",
                 "--service=fill-traces", give_up_s=40)
        c = collector(project)
        queued, capacity = c["otelcol_exporter_queue_size[otlp_grpc/jaeger]"], \
            c["otelcol_exporter_queue_capacity[otlp_grpc/jaeger]"]
        refused = probes.delta(c, {}, "otelcol_exporter_enqueue_failed_spans")
        on_disk = bounds.volume_sizes(project.name, os.environ.get("PROMETHEUS_IMAGE", ""), ["otelcol-queue"])
        FIGURES["collector queue, Jaeger down"] = (f"{queued / MiB:.1f} of {capacity / MiB:.0f} MiB queued, "
                                                  f"{refused:.0f} spans refused past it, "
                                                  f"{on_disk.get('otelcol-queue', 0) / MiB:.1f} MiB on disk")
        assert capacity == int(SMALL["OTELCOL_QUEUE_MAX_BYTES"]), capacity
        assert 0 < queued <= capacity and refused > 0, (queued, capacity, refused)
        assert on_disk.get("otelcol-queue", 0) > MiB, f"the queue is not on its volume: {on_disk}"
    finally:
        project.start("jaeger")
    poll_until(lambda: collector(project)["otelcol_exporter_queue_size[otlp_grpc/jaeger]"] == 0, 180,
                  "the full queue drains into Jaeger once it is back", interval=3)


def test_jaeger_drops_traces_older_than_its_ttl(project: Project) -> None:
    ttl = 60  # JAEGER_TRACES_TTL
    old, new = secrets.token_hex(4), secrets.token_hex(4)
    t0 = time.time()
    generate(project, "traces", "--traces=50", "--child-spans=1", "--rate=1000", f'--telemetry-attributes=bench.run="{old}"')
    poll_until(lambda: probes.jaeger_spans(project, old, t0 - 5, time.time()), 60,
                  "the first traces are in Jaeger", interval=3)
    time.sleep(max(0.0, t0 + ttl + 15 - time.time()))
    t1 = time.time()
    generate(project, "traces", "--traces=50", "--child-spans=1", "--rate=1000", f'--telemetry-attributes=bench.run="{new}"')
    kept = poll_until(lambda: probes.jaeger_spans(project, new, t1 - 5, time.time()), 60,
                         "traces written after the TTL are in Jaeger", interval=3)
    gone = probes.jaeger_spans(project, old, t0 - 5, t1)
    FIGURES["Jaeger TTL 1m"] = f"spans older than the TTL returned: {gone}; newer: {kept}"
    assert gone == 0 and kept == 100, (gone, kept)


def test_prometheus_drops_its_oldest_blocks_and_keeps_appending(project: Project) -> None:
    """Runs last: by now the module's metric load has filled several one-minute blocks."""
    def dropped() -> float:
        n = prom(project, "prometheus_tsdb_time_retentions_total") + prom(project, "prometheus_tsdb_size_retentions_total")
        assert n > 0, "no block dropped by retention yet"
        return n

    poll_until(dropped, 300, "Prometheus drops a block by retention", interval=10)
    lowest = prom(project, "prometheus_tsdb_lowest_timestamp") / 1000
    # No sample predates the process: an oldest sample after its start means blocks went.
    born = prom(project, 'process_start_time_seconds{job="prometheus"}')
    blocks = prom(project, "prometheus_tsdb_storage_blocks_bytes")
    fresh = prom(project, 'time() - max(timestamp(up{job="prometheus"}))')
    FIGURES["Prometheus retention 3m / 64MB"] = (f"oldest sample {time.time() - lowest:.0f} s old, blocks "
                                                f"{blocks / MiB:.1f} MiB, newest scrape {fresh:.0f} s old")
    assert lowest > born, f"the oldest sample ({lowest:.0f}) is from Prometheus' start ({born:.0f}): nothing dropped"
    assert blocks <= bounds.to_bytes(SMALL["PROMETHEUS_RETENTION_SIZE"]), blocks
    assert fresh < 60, "Prometheus stopped appending"


def test_every_store_stayed_in_its_memory_and_nothing_restarted(project: Project) -> None:
    rows = {r["Service"]: r for r in compose_info.ps(project.cmd)}
    limits = bounds.config(project.cmd)["services"]
    peaks = project.stats.rss
    report, bad = {}, []
    for svc in ("prometheus", "jaeger", "otel-collector"):
        cid = rows[svc]["ID"]
        state = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True).stdout)[0]
        limit = int(limits[svc]["mem_limit"]) / MiB
        report[svc] = f"peak {peaks.get(svc, 0):.0f} of {limit:.0f} MiB, restarts {state['RestartCount']}"
        if state["RestartCount"] or state["State"]["OOMKilled"] or peaks.get(svc, 0) >= limit:
            bad.append((svc, report[svc], state["State"]["OOMKilled"]))
    FIGURES["memory during the fill"] = report
    assert not bad, bad
