#!/usr/bin/env python3
"""Cost of the instrumentation: inventory `GET /api/items` with telemetry on vs off.

Two inventory processes (uvicorn, loopback) run side by side: one with
OTEL_SDK_DISABLED=true, one with traces and OTLP logs exported over OTLP/HTTP to a
receiver in a third process that decodes every request with the OTLP protobufs (so
the exporter does its full work: serialise, send, get a 200). Prometheus metrics and
JSON stdout logs are on in both: they are the service's contract, not optional
telemetry. Rounds alternate off/on so that noise from other load hits both alike.

Usage: python3 demo_app/bench/bench.py [--seconds 4] [--rounds 3] [--concurrency 8]
Exit code 0; 1 with --strict when throughput on/off < 0.85.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent / "src"
PATH = "/api/items"
TARGET = 0.85


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ OTLP receiver
def run_otlp_receiver(port: int) -> None:
    """Accepts OTLP/HTTP protobuf on /v1/traces and /v1/logs and counts what it decodes."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest, ExportLogsServiceResponse)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse)

    counts = {"spans": 0, "logs": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = f"{counts['spans']} {counts['logs']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                import gzip

                raw = gzip.decompress(raw)
            if self.path == "/v1/traces":
                req = ExportTraceServiceRequest.FromString(raw)
                counts["spans"] += sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
                out = ExportTraceServiceResponse().SerializeToString()
            elif self.path == "/v1/logs":
                req = ExportLogsServiceRequest.FromString(raw)
                counts["logs"] += sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)
                out = ExportLogsServiceResponse().SerializeToString()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

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
def start_inventory(port: int, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DEMO_"))}
    env.update({"PYTHONPATH": str(SRC), "DEMO_HOST": "127.0.0.1", "DEMO_PORT": str(port),
                "OTEL_SERVICE_NAME": "inventory"}, **env_extra)
    return subprocess.Popen([sys.executable, "-m", "demo_app", "inventory"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    ap.add_argument("--strict", action="store_true", help=f"exit 1 when throughput ratio < {TARGET}")
    ap.add_argument("--on-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the 'on' service, e.g. OTEL_TRACES_SAMPLER_ARG=0.1")
    ap.add_argument("--otlp-receiver", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.otlp_receiver:
        run_otlp_receiver(args.otlp_receiver)
        return 0

    otlp_port, off_port, on_port = free_port(), free_port(), free_port()
    procs = [subprocess.Popen([sys.executable, __file__, "--otlp-receiver", str(otlp_port)],
                              env={**os.environ, "PYTHONPATH": str(SRC)})]
    try:
        wait_http(f"http://127.0.0.1:{otlp_port}/", procs[0])
        off = start_inventory(off_port, {"OTEL_SDK_DISABLED": "true"})
        on_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        on_env.update(kv.split("=", 1) for kv in args.on_env)
        on = start_inventory(on_port, on_env)
        procs += [off, on]
        for port, proc in ((off_port, off), (on_port, on)):
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        # warm-up (imports, JIT-less caches, connection setup)
        for port in (off_port, on_port):
            asyncio.run(_round(port, 1.0, args.concurrency))

        results = {"off": [], "on": []}
        cpu = {"off": 0.0, "on": 0.0}
        for _ in range(args.rounds):
            for name, port, proc in (("off", off_port, off), ("on", on_port, on)):
                c0 = cpu_seconds(proc.pid)
                results[name].append(asyncio.run(_round(port, args.seconds, args.concurrency)))
                cpu[name] += cpu_seconds(proc.pid) - c0

        summary = {}
        for name, rounds in results.items():
            n = sum(r[0] for r in rounds)
            secs = sum(r[3] for r in rounds)
            lat = [x for r in rounds for x in r[1]]
            errs = sum(r[2] for r in rounds)
            summary[name] = {"rps": n / secs, "cpu_us": cpu[name] / n * 1e6, "p50": pct(lat, 0.50), "p99": pct(lat, 0.99), "n": n, "errors": errs,
                             "per_round": [r[0] / r[3] for r in rounds]}
        time.sleep(1.5)  # let the last batches reach the receiver
        spans, logs = urllib.request.urlopen(f"http://127.0.0.1:{otlp_port}/").read().decode().split()
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
    for name in ("off", "on"):
        s = summary[name]
        rounds = ", ".join(f"{x:.0f}" for x in s["per_round"])
        print(f"  telemetry {name:3}: {s['rps']:8.1f} req/s   p50 {s['p50']:6.2f} ms   p99 {s['p99']:6.2f} ms"
              f"   {s['cpu_us']:5.0f} us CPU/req   ({s['n']} requests, {s['errors']} non-200; per round {rounds})")
    ratio = summary["on"]["rps"] / summary["off"]["rps"]
    print(f"  ratio on/off: throughput {ratio:.3f} (target >= {TARGET}), "
          f"p50 x{summary['on']['p50'] / summary['off']['p50']:.2f}, p99 x{summary['on']['p99'] / summary['off']['p99']:.2f}, "
          f"server CPU per request x{summary['on']['cpu_us'] / summary['off']['cpu_us']:.2f}")
    print(f"  OTLP receiver decoded {spans} spans and {logs} log records from the 'on' service")
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    print(f"  {verdict}")
    if summary["off"]["errors"] or summary["on"]["errors"]:
        print("  warning: some responses were not 200")
    return 1 if args.strict and ratio < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
