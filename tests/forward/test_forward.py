"""Send a copy to your own backend, counted by id: spans, log records and metric points of
known ids go into the stack's collector (OTLP/HTTP, as an app sends them) and are found
locally (Jaeger, Prometheus, Loki where its image is here) and remotely (the remote
collector prints each one it accepted; Thanos holds every sample Prometheus
remote-wrote); through a 60-second outage of both remote backends under the demo's load,
local delivery goes on as before and the remote catches up to what was sent; a wrong token
or a wrong TLS setting is loud: the collector's log, its metrics and a stack alert."""
from __future__ import annotations

import re
import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from drills.backtest import seconds
from scripts import envfile
from tests.e2e import clients, remote
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

from .conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.signal("forwarding")]
SERVICE = "forward-probe"
METRIC = "forward_probe"
TRACES, METRICS, LOGS = "otlp_grpc/forward_traces", "otlp_grpc/forward_metrics", "otlp_grpc/forward_logs"


def _attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


@dataclass
class Ids:
    """What was sent, by id: trace ids, log bodies, gauge values (each point's value is its id)."""
    traces: set[str] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    points: set[int] = field(default_factory=set)

    def add(self, other: "Ids") -> None:
        self.traces |= other.traces
        self.logs |= other.logs
        self.points |= other.points

    def sizes(self, signals=("traces", "logs", "points")) -> dict[str, int]:
        names = {"traces": "spans", "logs": "log records", "points": "metric points"}
        return {names[s]: len(getattr(self, s)) for s in signals}


class Probe:
    """An app of known output: each batch is N one-span traces, N log records and N points
    of the gauge forward_probe{run}, posted to the collector's OTLP/HTTP port."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(4)
        self.sent = Ids()
        self.batches = 0
        self.last_ms = 0  # the newest point's timestamp so far

    def post(self, path: str, message) -> None:
        r = requests.post(clients.url("otel-collector", path, port=4318), data=message.SerializeToString(),
                          headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        assert r.status_code == 200, f"the collector answered {r.status_code} to {path}: {r.text[:300]}"

    def batch(self, n: int = 20) -> Ids:
        self.batches += 1
        k, now = self.batches, time.time_ns()
        ids = Ids({secrets.token_hex(16) for _ in range(n)}, {f"{SERVICE} {self.run} {k}-{i}" for i in range(n)},
                  {k * 1000 + i for i in range(n)})
        resource = Resource(attributes=[_attr("service.name", SERVICE)])
        spans = [Span(trace_id=bytes.fromhex(t), span_id=secrets.token_bytes(8), name="probe", kind=Span.SPAN_KIND_SERVER,
                      start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now, attributes=[_attr("run", self.run)])
                 for t in sorted(ids.traces)]
        self.post("/v1/traces", ExportTraceServiceRequest(resource_spans=[
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]))
        logs = [LogRecord(time_unix_nano=now, severity_text="INFO", body=AnyValue(string_value=b),
                          attributes=[_attr("run", self.run)]) for b in sorted(ids.logs)]
        self.post("/v1/logs", ExportLogsServiceRequest(resource_logs=[
            ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=logs)])]))
        # Points 1 ms apart (the backends keep milliseconds), in the order of their ids and
        # after every earlier batch's: a series' samples only move forward, none shares a
        # millisecond (a second value for the same one is refused as a duplicate).
        first_ms = max(self.last_ms + 1, now // 1_000_000 - n)
        self.last_ms = first_ms + n - 1
        points = [NumberDataPoint(time_unix_nano=(first_ms + i) * 1_000_000, as_int=v, attributes=[_attr("run", self.run)])
                  for i, v in enumerate(sorted(ids.points))]
        self.post("/v1/metrics", ExportMetricsServiceRequest(resource_metrics=[
            ResourceMetrics(resource=resource, scope_metrics=[ScopeMetrics(metrics=[
                Metric(name=METRIC, gauge=Gauge(data_points=points))])])]))
        self.sent.add(ids)
        return ids


# ---- where the copies are ------------------------------------------------------------------

TRACE_LINE = re.compile(r"^\s*Trace ID\s*: ([0-9a-f]{32})\s*$", re.MULTILINE)
VALUE_LINE = re.compile(r"^Value: (\d+)\s*$")


def remote_otlp(stack: st.Stack, run: str) -> Ids:
    """What remote-otlp accepted from this run, read from its debug exporter's lines."""
    text = remote.printed(stack)
    got = Ids(traces=set(TRACE_LINE.findall(text)),
              logs=set(re.findall(rf"Body: Str\(({SERVICE} {run} \d+-\d+)\)", text)))
    in_run = False
    for line in text.splitlines():  # a point: its attributes, then its value
        if line.strip().startswith("-> run: Str("):
            in_run = line.strip() == f"-> run: Str({run})"
        elif in_run and (m := VALUE_LINE.match(line.strip())):
            got.points.add(int(m.group(1)))
            in_run = False
    return got


def samples(base_url: str, run: str) -> set[int]:
    """The values of every sample of forward_probe{run} over the last 30 minutes."""
    r = requests.get(f"{base_url}/api/v1/query", params={"query": f'{METRIC}{{run="{run}"}}[30m]'}, timeout=30)
    r.raise_for_status()
    return {int(float(v)) for series in r.json()["data"]["result"] for _, v in series["values"]}


def local(stack: st.Stack, probe: Probe, ids: Ids) -> Ids:
    """What of `ids` the local backends hold (logs: Loki, when it runs)."""
    got = Ids(traces={t for t in ids.traces if clients.jaeger_trace(t)}, points=samples(clients.url("prometheus"), probe.run))
    if "loki" in stack.running():
        body = clients.inside_json(stack, "loki", 3100, "/loki/api/v1/query_range", {
            "query": f'{{service_name="{SERVICE}"}} |= "{probe.run}"', "limit": 5000, "since": "1h"})
        got.logs = {v[1] for s in body["data"]["result"] for v in s["values"]}
    return got


def until_arrived(what: str, fetch, ids: Ids, timeout: float, signals=("traces", "logs", "points")) -> float:
    """Polls `fetch()` until it holds every id of `ids` (in `signals`); seconds it took."""
    t0 = time.monotonic()

    def arrived() -> bool:
        got = fetch()
        missing = {s: len(getattr(ids, s) - getattr(got, s)) for s in signals}
        assert not any(missing.values()), f"missing {missing} of {ids.sizes()}"
        return True

    poll_until(arrived, timeout, what, interval=2)
    return time.monotonic() - t0


def thanos(stack: st.Stack, run: str) -> Ids:
    return Ids(points=samples(clients.url("thanos-query"), run))


def remote_write_failed() -> float:
    """Samples Prometheus gave up on (a 4xx answer): a retry is not a failure."""
    return sum(float(r["value"][1]) for r in clients.prom_query("prometheus_remote_storage_samples_failed_total"))


def local_signals(stack: st.Stack) -> tuple[str, ...]:
    return ("traces", "points", "logs") if "loki" in stack.running() else ("traces", "points")


# ---- the tests ---------------------------------------------------------------------------

def test_a_copy_of_every_signal_arrives_locally_and_remotely(fwd: st.Stack) -> None:
    probe = Probe()
    for _ in range(5):
        probe.batch()
    sent = probe.sent
    local_s = until_arrived("every span and point is in Jaeger and Prometheus", lambda: local(fwd, probe, sent),
                            sent, 120, local_signals(fwd))
    remote_s = until_arrived("every span, log record and point reached remote-otlp", lambda: remote_otlp(fwd, probe.run),
                             sent, 120)
    rw_s = until_arrived("every point reached Thanos by remote_write", lambda: thanos(fwd, probe.run), sent, 120,
                         ("points",))
    FIGURES["copy, counted by id"] = {"sent": sent.sizes(), "local_s": round(local_s, 1),
                                      "remote_otlp_s": round(remote_s, 1), "remote_write_s": round(rw_s, 1)}
    # The demo's own traffic is forwarded too: the remote collector accepted spans of it.
    demo_spans = clients.collector_metric(fwd, "otelcol_exporter_sent_spans", exporter=TRACES)
    assert demo_spans > len(sent.traces), f"the forward exporter sent only {demo_spans} spans"


def test_log_records_arrive_locally_too(fwd: st.Stack) -> None:
    """The local half of the logs' tee (the remote half is counted above): Loki."""
    if "loki" not in fwd.running():
        pytest.skip(f"Loki is not running here: {fwd.plan.missing.get('loki', 'not started')}")
    probe = Probe()
    probe.batch()
    until_arrived("every log record is in Loki", lambda: local(fwd, probe, probe.sent), probe.sent, 120, ("logs",))


def test_remote_outage_leaves_local_delivery_alone_and_the_copy_catches_up(fwd: st.Stack) -> None:
    probe = Probe()

    def local_latency(ids: Ids) -> float:
        return until_arrived("the batch's spans are in Jaeger", lambda: local(fwd, probe, ids), ids, 60, ("traces",))

    before = [local_latency(probe.batch()) for _ in range(3)]
    refused = clients.collector_metric(fwd, "otelcol_receiver_refused_spans")
    given_up = remote_write_failed()
    fwd.compose("stop", "remote-otlp", "thanos-receive")
    t0 = time.monotonic()
    during: list[float] = []
    try:
        while time.monotonic() - t0 < 60:
            started = time.monotonic()
            during.append(local_latency(probe.batch()))
            time.sleep(max(0.0, 5 - (time.monotonic() - started)))
        queued = clients.collector_metric(fwd, "otelcol_exporter_queue_size", exporter=TRACES)
    finally:
        fwd.compose("start", "remote-otlp", "thanos-receive")
    outage_s = time.monotonic() - t0
    sent = probe.sent
    local_all = until_arrived("every span and point sent is local", lambda: local(fwd, probe, sent), sent, 120,
                              local_signals(fwd))
    catch_up = until_arrived("the remote copy catches up with what was sent",
                             lambda: remote_otlp(fwd, probe.run), sent, 300)
    rw_catch_up = until_arrived("Thanos catches up by remote_write", lambda: thanos(fwd, probe.run), sent, 300,
                                ("points",))
    assert clients.collector_metric(fwd, "otelcol_receiver_refused_spans") == refused, "the receiver refused spans"
    assert remote_write_failed() == given_up, "Prometheus gave up on samples the remote refused"
    FIGURES["60 s remote outage under the demo's load"] = {
        "sent": sent.sizes(), "outage_s": round(outage_s), "forward queue at its end (bytes)": int(queued),
        "local latency before, median s": round(statistics.median(before), 1),
        "local latency during, median / max s": f"{statistics.median(during):.1f} / {max(during):.1f}",
        "remote caught up after s": round(catch_up, 1), "thanos caught up after s": round(rw_catch_up, 1),
        "local check after s": round(local_all, 1)}
    # Local delivery is not held up by the copy: as fast as before, within the polling's grain.
    assert max(during) < max(before) + 10, f"local latency during the outage {during} vs before {before}"
    assert queued > 0, "nothing waited in the forward queue during the outage"


def spans_per_trace(trace_id: str) -> int:
    trace = clients.jaeger_trace(trace_id)
    return len(trace["spans"]) if trace else 0


@pytest.mark.parametrize("remote_is", ["down", "slow"])
def test_a_full_forward_queue_never_refuses_or_doubles_local_telemetry(fwd: st.Stack, remote_is: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward queue far too small for the outage, the remote stopped (down) or frozen
    (slow: connections accepted, nothing answered): every app request is accepted, every
    span, point (and log record, where Loki runs) is stored locally once; the copy drops
    what it cannot hold, counted, and the stack says so (OtelCollectorForwardDropping)."""
    monkeypatch.setenv("FORWARD_QUEUE_MAX_BYTES", "65536")
    recreate_collector(fwd)
    probe = Probe()
    refused = {sig: clients.collector_metric(fwd, f"otelcol_receiver_refused_{sig}", receiver="otlp")
               for sig in ("spans", "log_records", "metric_points")}
    fwd.compose("stop" if remote_is == "down" else "pause", "remote-otlp")
    t0 = time.monotonic()
    try:
        for _ in range(24):  # two minutes of batches on top of the demo's load
            started = time.monotonic()
            probe.batch()  # asserts the collector accepted each request (200)
            time.sleep(max(0.0, 5 - (time.monotonic() - started)))
        poll_until(lambda: clients.collector_metric(fwd, "otelcol_exporter_send_failed_spans", exporter="otlp_grpc/tee")
                   > 0, 120, "the tee drops the copy it cannot hold, counted")
        poll_until(lambda: firing("OtelCollectorForwardDropping"), 300,
                   "OtelCollectorForwardDropping fires", interval=5)
        alert_s = time.monotonic() - t0
        dropped = {sig: clients.collector_metric(fwd, f"otelcol_exporter_send_failed_{sig}", exporter="otlp_grpc/tee")
                   for sig in ("spans", "log_records", "metric_points")}
        sent = probe.sent
        signals = local_signals(fwd)
        until_arrived("every span and point is stored locally", lambda: local(fwd, probe, sent), sent, 180, signals)
        stored = local(fwd, probe, sent)
        doubled = [t for t in sent.traces if spans_per_trace(t) != 1]
        assert not doubled, f"{len(doubled)} of {len(sent.traces)} one-span traces hold another number of spans"
        points = samples(clients.url("prometheus"), probe.run)
        assert points == sent.points, f"Prometheus holds {len(points)} points, {len(sent.points)} sent"
        now_refused = {sig: clients.collector_metric(fwd, f"otelcol_receiver_refused_{sig}", receiver="otlp")
                       for sig in refused}
        assert now_refused == refused, f"the otlp receiver refused data: before {refused}, after {now_refused}"
        FIGURES[f"remote {remote_is}, a 64 KiB forward queue"] = {
            "sent": sent.sizes(signals), "stored locally, each once": stored.sizes(signals),
            "refused": {sig: int(now_refused[sig] - refused[sig]) for sig in refused},
            "copy dropped by the tee (counted)": {k: int(v) for k, v in dropped.items()},
            "OtelCollectorForwardDropping after s": round(alert_s)}
    finally:
        fwd.compose("start" if remote_is == "down" else "unpause", "remote-otlp")
        monkeypatch.setenv("FORWARD_QUEUE_MAX_BYTES", str(256 * 2**20))
        recreate_collector(fwd)


def test_a_remote_write_backend_down_leaves_local_samples_whole(fwd: st.Stack) -> None:
    """remote_write reads Prometheus' write-ahead log apart from scraping and appending: with
    its backend stopped for longer than the alert's 2 + 2 minutes, every scrape and every
    pushed point is stored locally, PrometheusRemoteWriteBehind says so, and the backend
    gets every point once it is back (from the log)."""
    probe = Probe()
    fwd.compose("stop", "thanos-receive")
    t_stop = time.time()
    try:
        while not firing("PrometheusRemoteWriteBehind"):
            assert time.time() - t_stop < 600, "PrometheusRemoteWriteBehind did not fire within 10 minutes"
            started = time.monotonic()
            probe.batch()
            time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        alert_s = time.time() - t_stop
    finally:
        fwd.compose("start", "thanos-receive")
    t_start = time.time()
    sent = probe.sent
    assert samples(clients.url("prometheus"), probe.run) == sent.points, "Prometheus lost pushed points"
    config = yaml.safe_load(clients.get_json("prometheus", "/api/v1/status/config")["data"]["yaml"])
    scrape_interval = seconds(config["global"]["scrape_interval"])
    window = int(t_start - t_stop) + 30
    stamps = sorted(float(t) for r in clients.prom_query(f'up{{job="alert-sink"}}[{window}s]')
                    for t, _ in r["values"])
    # Every scrape of the outage is there (an empty or thin range would show no gap either).
    assert len(stamps) >= 0.8 * window / scrape_interval, \
        f"{len(stamps)} scrapes of alert-sink in {window} s at one per {scrape_interval} s"
    gaps = [round(b - a) for a, b in zip(stamps, stamps[1:]) if b - a > 2.5 * scrape_interval]
    assert not gaps, f"local scrapes have gaps while remote_write's backend was down: {gaps}"
    caught_up = until_arrived("Thanos gets every point from Prometheus' log", lambda: thanos(fwd, probe.run), sent,
                              600, ("points",))
    FIGURES["remote_write backend down"] = {
        "outage_s": round(t_start - t_stop), "points sent": len(sent.points), "stored locally": len(sent.points),
        "local scrapes": f"{len(stamps)}, no gap", "PrometheusRemoteWriteBehind after s": round(alert_s),
        "backend caught up after s": round(caught_up)}


def recreate_collector(fwd: st.Stack) -> None:
    fwd.compose("up", "-d", "--no-deps", "--force-recreate", "--wait", "otel-collector", timeout=300)


def forward_headers(fwd: st.Stack, token: str) -> None:
    envfile.write_secrets({**fwd.env, "FORWARD_OTLP_HEADERS": f"authorization=Bearer%20{token}"},
                          Path(fwd.env["SECRETS_DIR"]))


def firing(alertname: str, **labels: str) -> bool:
    return any(a["state"] == "firing" and a["labels"].get("alertname") == alertname
               and all(a["labels"].get(k) == v for k, v in labels.items())
               for a in clients.get_json("prometheus", "/api/v1/alerts")["data"]["alerts"])


def test_a_wrong_token_is_loud_and_local_delivery_goes_on(fwd: st.Stack) -> None:
    forward_headers(fwd, "not-the-token")
    recreate_collector(fwd)
    try:
        probe = Probe()
        t0 = time.monotonic()
        ids = probe.batch()
        until_arrived("local delivery goes on", lambda: local(fwd, probe, ids), ids, 60, ("traces",))
        poll_until(lambda: "Unauthenticated" in fwd.logs("otel-collector", tail=300), 120,
                      "the collector logs the remote's Unauthenticated answer")
        poll_until(lambda: clients.collector_metric(fwd, "otelcol_exporter_send_failed_spans", exporter=TRACES) > 0,
                      120, "otelcol_exporter_send_failed_spans counts the refused copy")
        poll_until(lambda: firing("OtelCollectorExporterFailing", exporter=TRACES), 300,
                      "OtelCollectorExporterFailing fires for the forward exporter", interval=5)
        line = next(ln for ln in fwd.logs("otel-collector", tail=300).splitlines() if "Unauthenticated" in ln)
        FIGURES["wrong token"] = {"alert after s": round(time.monotonic() - t0), "log": line[-300:]}
    finally:
        forward_headers(fwd, fwd.token)
        recreate_collector(fwd)


def test_a_wrong_tls_setting_is_loud(fwd: st.Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARD_OTLP_INSECURE", "false")  # TLS towards a plain-gRPC backend
    recreate_collector(fwd)
    try:
        t0 = time.monotonic()
        poll_until(lambda: "handshake" in fwd.logs("otel-collector", tail=300), 120,
                      "the collector logs the failed TLS handshake")
        poll_until(lambda: clients.collector_metric(fwd, "otelcol_exporter_queue_size", exporter=TRACES) > 0, 120,
                      "the forward queue holds what cannot be sent")
        poll_until(lambda: firing("OtelCollectorForwardStalled", exporter=TRACES), 420,
                      "OtelCollectorForwardStalled fires for the forward exporter", interval=5)
        line = next(ln for ln in fwd.logs("otel-collector", tail=300).splitlines() if "handshake" in ln)
        FIGURES["wrong TLS"] = {"alert after s": round(time.monotonic() - t0), "log": line[-300:]}
    finally:
        monkeypatch.setenv("FORWARD_OTLP_INSECURE", "true")
        recreate_collector(fwd)


def test_the_figures_printed_and_kept_hold_no_token(fwd: st.Stack) -> None:
    """The tier's settings are printed in the summary and kept in build/forward.json."""
    assert FIGURES["settings"]["FORWARD_OTLP_ENDPOINT"] == "remote-otlp:4317"
    assert fwd.token not in st.to_json(FIGURES), "the forwarding token is in the recorded figures"
