#!/usr/bin/env python3
"""Cost of the instrumentation: inventory `GET /api/items` under five telemetry setups.

Six inventory processes (uvicorn, loopback) run side by side, loaded in alternating
rounds so that noise from other load hits all alike:

  off                 OTEL_SDK_DISABLED=true
  ours, plain         the demo's own setup (demo_app/telemetry.py) as shipped: SDK defaults
  ours                that with the opt-in tuning on (DEMO_TUNED=true, demo_app/tuning.py),
                      every trace sampled
  zero-code           the same app under `opentelemetry-instrument` with its defaults
                      (the upstream zero-code setup) and the same exporters: the peer
  ours 10%            ours with parentbased_traceidratio 0.1, the cheap production setting
  ours 10% + logs     that, plus DEMO_OTLP_LOGS_SAMPLED_ONLY=true: log records of
                      unsampled traces stay on stdout only

Every "on" variant exports traces and log records over OTLP/HTTP to a receiver in another
process that decodes every request with the OTLP protobufs (so the exporters do their full
work: serialise, send, get a 200) and counts what each service sent. Prometheus metrics and
JSON stdout logs are on in all six: they are the service's contract, not optional telemetry.

Usage: python3 demo_app/bench/bench.py [--seconds 4] [--rounds 3] [--concurrency 8]
Exit code 0; 1 with --strict when a target below is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent / "src"
PATH = "/api/items"
# Targets: ours at least as fast as the zero-code peer; at 10 % sampling (log records of
# sampled traces only) at least 0.75 of the throughput without telemetry.
TARGET_OURS_VS_PEER = 1.0
TARGET_CHEAP_VS_OFF = 0.75
SAMPLE_10 = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
TUNED = {"DEMO_TUNED": "true"}
# name -> (environment, runs under opentelemetry-instrument)
VARIANTS: dict[str, tuple[dict[str, str], bool]] = {
    "off": ({"OTEL_SDK_DISABLED": "true"}, False),
    "ours, plain": ({}, False),
    "ours": (TUNED, False),
    "zero-code": ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
                   "OTEL_METRICS_EXPORTER": "none"}, True),  # metrics: Prometheus in all six
    "ours 10%": ({**TUNED, **SAMPLE_10}, False),
    "ours 10% + logs": ({**TUNED, **SAMPLE_10, "DEMO_OTLP_LOGS_SAMPLED_ONLY": "true"}, False),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ OTLP receiver
def run_otlp_receiver(port: int) -> None:
    """Accepts OTLP/HTTP protobuf on /v1/traces and /v1/logs and counts what it decodes,
    per service.name; GET / returns the counts as JSON."""
    import gzip
    import json
    from collections import Counter
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest, ExportLogsServiceResponse)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse)

    counts: Counter[tuple[str, str]] = Counter()

    def service(resource) -> str:
        return next((a.value.string_value for a in resource.attributes if a.key == "service.name"), "?")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status: int, body: bytes = b"", content_type: str = "application/x-protobuf"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            body = {svc: {} for svc, _ in counts}
            for (svc, kind), n in counts.items():
                body[svc][kind] = n
            self.reply(200, json.dumps(body).encode(), "application/json")

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            if self.path == "/v1/traces":
                for rs in ExportTraceServiceRequest.FromString(raw).resource_spans:
                    counts[service(rs.resource), "spans"] += sum(len(ss.spans) for ss in rs.scope_spans)
                self.reply(200, ExportTraceServiceResponse().SerializeToString())
            elif self.path == "/v1/logs":
                for rl in ExportLogsServiceRequest.FromString(raw).resource_logs:
                    counts[service(rl.resource), "logs"] += sum(len(sl.log_records) for sl in rl.scope_logs)
                self.reply(200, ExportLogsServiceResponse().SerializeToString())
            else:
                self.reply(404)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# ------------------------------------------------------------------ load client
async def _worker(port: int, deadline: float, lat: list[float], errors: list[int]) -> None:
    # A minimal keep-alive HTTP/1.1 client: much cheaper per request than a full
    # client library, so the server (not the client) is what saturates.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


async def _round(port: int, seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    lat: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(_worker(port, deadline, lat, errors) for _ in range(concurrency)))
    return len(lat), lat, len(errors), time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc: robust to other load."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] * 1000


# ------------------------------------------------------------------ orchestration
def start_inventory(port: int, env_extra: dict[str, str], zero_code: bool) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DEMO_"))}
    env.update({"PYTHONPATH": str(SRC), "DEMO_HOST": "127.0.0.1", "DEMO_PORT": str(port)}, **env_extra)
    cmd = [sys.executable, "-m", "demo_app", "inventory"]
    if zero_code:
        # The console script installed next to this interpreter (make bench runs .venv's).
        cmd = [str(pathlib.Path(sys.executable).with_name("opentelemetry-instrument")), *cmd]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="length of one round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per variant (alternating)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--on-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for every variant with telemetry, e.g. OTEL_BSP_SCHEDULE_DELAY=1000")
    ap.add_argument("--otlp-receiver", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.otlp_receiver:
        run_otlp_receiver(args.otlp_receiver)
        return 0

    otlp_port = free_port()
    procs = [subprocess.Popen([sys.executable, __file__, "--otlp-receiver", str(otlp_port)],
                              env={**os.environ, "PYTHONPATH": str(SRC)})]
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", **dict(kv.split("=", 1) for kv in args.on_env)}
    servers: dict[str, tuple[int, subprocess.Popen]] = {}
    try:
        wait_http(f"http://127.0.0.1:{otlp_port}/", procs[0])
        for name, (env, zero_code) in VARIANTS.items():
            port = free_port()
            extra = env if name == "off" else {**otlp, **env}
            proc = start_inventory(port, {"OTEL_SERVICE_NAME": name, **extra}, zero_code)
            procs.append(proc)
            servers[name] = (port, proc)
        for port, proc in servers.values():
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        # Warm-up (imports, caches, connection setup); its requests are exported too.
        warm = {name: asyncio.run(_round(port, 1.0, args.concurrency))[0] for name, (port, _) in servers.items()}

        results: dict[str, list] = {name: [] for name in servers}
        cpu = dict.fromkeys(servers, 0.0)
        for _ in range(args.rounds):
            for name, (port, proc) in servers.items():
                c0 = cpu_seconds(proc.pid)
                results[name].append(asyncio.run(_round(port, args.seconds, args.concurrency)))
                cpu[name] += cpu_seconds(proc.pid) - c0

        summary = {}
        for name, rounds in results.items():
            n = sum(r[0] for r in rounds)
            lat = [x for r in rounds for x in r[1]]
            summary[name] = {"rps": n / sum(r[3] for r in rounds), "cpu_us": cpu[name] / n * 1e6,
                             "p50": pct(lat, 0.50), "p99": pct(lat, 0.99), "n": n,
                             "errors": sum(r[2] for r in rounds), "per_round": [r[0] / r[3] for r in rounds]}
        time.sleep(2.5)  # let the last batches reach the receiver
        with urllib.request.urlopen(f"http://127.0.0.1:{otlp_port}/") as r:
            received = json.load(r)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    print(f"inventory GET {PATH}: {args.rounds} alternating rounds of {args.seconds:g}s per variant, "
          f"concurrency {args.concurrency}, Python {sys.version.split()[0]}"
          + (f", on-env {' '.join(args.on_env)}" if args.on_env else ""))
    for name, s in summary.items():
        got = received.get(name, {})
        served = s["n"] + warm[name]
        exported = "" if name == "off" else (f"   OTLP per request: {got.get('spans', 0) / served:4.2f} spans, "
                                             f"{got.get('logs', 0) / served:4.2f} log records")
        print(f"  {name:16} {s['rps']:8.1f} req/s  p50 {s['p50']:6.2f} ms  p99 {s['p99']:6.2f} ms"
              f"  {s['cpu_us']:5.0f} us CPU/req  ({s['n']} requests, {s['errors']} non-200){exported}")

    def ratio(a: str, b: str) -> float:
        return summary[a]["rps"] / summary[b]["rps"]

    checks = [
        ("ours / zero-code peer, full sampling", ratio("ours", "zero-code"), TARGET_OURS_VS_PEER),
        ("ours 10% + sampled logs / off", ratio("ours 10% + logs", "off"), TARGET_CHEAP_VS_OFF),
    ]
    print(f"  throughput ratios: ours/off {ratio('ours', 'off'):.3f}, ours plain/off {ratio('ours, plain', 'off'):.3f}, "
          f"ours/ours plain (what the tuning buys) {ratio('ours', 'ours, plain'):.3f}, "
          f"zero-code/off {ratio('zero-code', 'off'):.3f}, "
          f"ours 10%/off {ratio('ours 10%', 'off'):.3f}, ours 10% + sampled logs/off {ratio('ours 10% + logs', 'off'):.3f}")
    missed = 0
    for label, value, target in checks:
        ok = value >= target
        missed += not ok
        print(f"  {label}: {value:.3f} (target >= {target}) {'OK' if ok else 'BELOW TARGET'}")
    if any(s["errors"] for s in summary.values()):
        print("  warning: some responses were not 200")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
