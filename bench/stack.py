#!/usr/bin/env python3
"""`make bench-stack`: how much telemetry the stack carries on this machine, side by side
with its ceiling.

A compose project of its own (obs-bench: docker-compose.yml + bench/docker-compose.bench.yml,
every port on loopback picked by Docker) runs Prometheus, Jaeger and the collector, plus a
second collector whose exporters discard everything (the ceiling). For each signal and
each rate step, telemetrygen offers that rate for a while, first to the stack's collector
(end to end: Jaeger, Prometheus; Loki where its image exists), then to the ceiling. Per
step, from the components' own metrics: accepted, refused, sent, failed and dropped at the
collector, what arrived (spans stored by Jaeger, samples in Prometheus), CPU and RSS per
container, and whether the generator really offered the rate asked for.

A step is sustained when nothing was refused, dropped or failed, what arrived equals what
was sent, and the generator offered at least 90 % of the rate. The figure of merit is a
ratio measured in one run, so it holds on a noisy machine: end-to-end sustained rate /
ceiling sustained rate.

    python3 bench/stack.py [--signals traces,metrics,logs] [--duration 20] [--smoke] [--keep]

Output: a table on stdout (a progress line per step), build/bench-stack.json and
build/bench-stack.png.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from scripts import compose_info  # noqa: E402

PROJECT = "obs-bench"
OUT_JSON = REPO / "build" / "bench-stack.json"
OUT_PNG = REPO / "build" / "bench-stack.png"
SERVICES = ["prometheus", "jaeger", "otel-collector-volume", "otel-collector", "collector-ceiling"]
# Rate steps (items per second) per signal; --smoke runs the first only, briefly.
STEPS = {
    "traces": [2500, 5000, 10000, 15000, 20000],
    "metrics": [5000, 10000, 20000, 30000],
    "logs": [5000, 10000, 20000, 30000],
}
# What the collector counts per signal (otelcol_<kind>_<item>), and telemetrygen's name.
ITEM = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}
# telemetrygen paces each worker with a limiter of burst 1: above ~1000 items/s per worker
# its sleeps overshoot and it offers 10 % less than asked. 500/s per worker offers ~98 %.
PER_WORKER = 500
# The generator must offer this share of the rate asked for: telemetrygen's limiter and
# connection start cost a few percent of a short step.
OFFERED_MIN = 0.9


# ---------------------------------------------------------------- compose project
class Bench:
    def __init__(self, env: dict[str, str], keep: bool):
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-stack-"))
        overlay = self.tmp / "ports.yml"
        overlay.write_text(compose_info.ephemeral_ports_overlay())
        env_file = self.tmp / "bench.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.cmd = ["docker", "compose", "-p", PROJECT, "-f", str(REPO / "docker-compose.yml"), "-f", str(overlay),
                    "-f", str(REPO / "bench" / "docker-compose.bench.yml"), "--env-file", str(env_file)]
        self.keep = keep
        self.ports: dict[str, dict[int, int]] = {}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*self.cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
        return p

    def up(self, services: list[str]) -> float:
        self.compose("down", "--volumes", "--remove-orphans", check=False)
        t0 = time.monotonic()
        self.compose("up", "-d", "--wait", "--no-deps", *services)
        self.ports = {svc: {t: port for t, (_, port) in ports.items()}
                      for svc, ports in compose_info.published(self.cmd).items()}
        return time.monotonic() - t0

    def down(self) -> None:
        if not self.keep:
            self.compose("down", "--volumes", "--remove-orphans", check=False)

    def url(self, service: str, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[service][port]}"


def _get(url: str, timeout: float = 10) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def counters(bench: Bench, service: str) -> dict[str, float]:
    """Every counter and gauge of an OTel collector's own metrics (:8888), summed by name
    and the exporter label (exporter="..." kept, everything else summed)."""
    out: dict[str, float] = {}
    for line in _get(bench.url(service, 8888) + "/metrics").decode().splitlines():
        m = re.match(r"^(otelcol_[a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m:
            continue
        exporter = re.search(r'exporter="([^"]+)"', m.group(2) or "")
        # Counters come with or without _total depending on the collector inside.
        key = m.group(1).removesuffix("_total") + (f"[{exporter.group(1)}]" if exporter else "")
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


def delta(after: dict[str, float], before: dict[str, float], prefix: str) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.split("[")[0] == prefix)


def prom_query(bench: Bench, expr: str) -> float:
    import urllib.parse

    body = json.loads(_get(bench.url("prometheus", 9090) + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    return sum(float(r["value"][1]) for r in body["data"]["result"])


# ---------------------------------------------------------------- resources
class Stats(threading.Thread):
    """docker stats of the project's containers (the generator included) every ~2 s:
    mean CPU (cores) and peak RSS (MiB) per compose service."""

    def __init__(self):
        super().__init__(daemon=True)
        self.cpu: dict[str, list[float]] = {}
        self.rss: dict[str, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            ps = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                                 "--format", '{{.Names}}\t{{.Label "com.docker.compose.service"}}'],
                                capture_output=True, text=True).stdout
            names = dict(line.split("\t") for line in ps.splitlines() if "\t" in line)
            if names:
                out = subprocess.run(["docker", "stats", "--no-stream", "--format",
                                      "{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}", *names],
                                     capture_output=True, text=True).stdout
                for line in out.splitlines():
                    name, cpu, mem = line.split("\t")
                    svc = names.get(name, name)
                    self.cpu.setdefault(svc, []).append(float(cpu.rstrip("%") or 0) / 100)
                    self.rss[svc] = max(self.rss.get(svc, 0.0), _mib(mem.split("/")[0]))
            self._stop_event.wait(1.0)

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop_event.set()
        self.join(30)
        return {svc: {"cpu_cores": round(sum(v) / len(v), 2), "rss_mib": round(self.rss.get(svc, 0.0), 1)}
                for svc, v in self.cpu.items() if v}


def _mib(text: str) -> float:
    m = re.match(r"([\d.]+)\s*([KMG]i?B|B)", text.strip())
    if not m:
        return 0.0
    unit = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "kB": 1 / 1049, "MB": 0.954, "GB": 953.7}
    return float(m.group(1)) * unit.get(m.group(2), 1)


# ---------------------------------------------------------------- one step
@dataclass
class Step:
    signal: str
    target: str  # "end-to-end" or "ceiling"
    rate: int
    duration_s: float
    asked: int = 0
    accepted: float = 0
    refused: float = 0
    sent: float = 0
    failed: float = 0
    dropped: float = 0
    arrived: float | None = None  # what the backend stored (None: not counted for this target)
    offered_ratio: float = 0
    resources: dict = field(default_factory=dict)
    sustained: bool = False
    note: str = ""


def generate(bench: Bench, signal: str, endpoint: str, rate: int, seconds: float, run_id: str) -> None:
    workers = max(1, -(-rate // PER_WORKER))
    args = [signal, f"--otlp-endpoint={endpoint}:4317", "--otlp-insecure", f"--duration={seconds:g}s",
            f"--workers={workers}", f"--rate={rate / workers:g}", "--batch-size=1000",
            f"--telemetry-attributes=bench.run=\"{run_id}\""]
    if signal == "traces":
        args.append("--child-spans=9")  # 10 spans per trace, like a small request
    if signal == "metrics":
        # One series per point each second: `rate` series at 1 Hz (one series at that rate
        # would only collide on Prometheus' millisecond timestamps).
        args += ["--unique-timeseries", "--metric-type=Sum"]
    bench.compose("run", "--rm", "--no-deps", "--name", f"{PROJECT}-generator", "telemetrygen", *args,
                  timeout=seconds + 120)


def arrived_in_backend(bench: Bench, signal: str, run_id: str, before: dict[str, float], window_s: float,
                       expected: float) -> float | None:
    if signal == "traces":
        # Jaeger batches too: wait (bounded) until it has stored what the collector sent.
        deadline = time.monotonic() + 30
        while True:
            stored = delta(counters(bench, "jaeger"), before, "otelcol_exporter_sent_spans")
            if stored >= expected or time.monotonic() > deadline:
                return stored
            time.sleep(1)
    if signal == "metrics":
        # Every point telemetrygen sent for this step is a sample of gen{bench_run=...}.
        return prom_query(bench, f'sum(count_over_time(gen_total{{bench_run="{run_id}"}}[{int(window_s) + 60}s]))')
    return None  # logs: stored in Loki, counted only where Loki runs


def drain(bench: Bench, service: str, timeout: float = 60) -> None:
    """Until the collector's queues are empty and its sent counters stop moving."""
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = counters(bench, service)
        queued = delta(c, {}, "otelcol_exporter_queue_size")
        sent = tuple(sorted((k, v) for k, v in c.items() if k.startswith("otelcol_exporter_sent_")))
        if queued == 0 and sent == last:
            return
        last = sent
        time.sleep(2)


def run_step(bench: Bench, signal: str, target: str, rate: int, duration: float) -> Step:
    service = "otel-collector" if target == "end-to-end" else "collector-ceiling"
    item = ITEM[signal]
    run_id = secrets.token_hex(4)
    step = Step(signal, target, rate, duration, asked=int(rate * duration))
    before = counters(bench, service)
    jaeger_before = counters(bench, "jaeger") if target == "end-to-end" else {}
    stats = Stats()
    stats.start()
    t0 = time.monotonic()
    try:
        generate(bench, signal, service, rate, duration, run_id)
    finally:
        elapsed = time.monotonic() - t0
        drain(bench, service)
        step.resources = stats.stop()
    after = counters(bench, service)
    step.accepted = delta(after, before, f"otelcol_receiver_accepted_{item}")
    step.refused = delta(after, before, f"otelcol_receiver_refused_{item}")
    step.sent = delta(after, before, f"otelcol_exporter_sent_{item}")
    step.failed = delta(after, before, f"otelcol_exporter_send_failed_{item}")
    step.dropped = delta(after, before, f"otelcol_exporter_enqueue_failed_{item}")
    if target == "end-to-end":
        time.sleep(6 if signal == "metrics" else 0)  # Prometheus makes appended samples queryable
        step.arrived = arrived_in_backend(bench, signal, run_id, jaeger_before, elapsed, step.accepted)
    step.offered_ratio = round((step.accepted + step.refused) / step.asked, 3) if step.asked else 0
    complete = step.arrived is None or step.arrived >= step.accepted
    # The ceiling's nop exporter counts nothing as sent: there, accepted is delivered.
    passed_on = target == "ceiling" or step.sent >= step.accepted
    clean = step.refused == 0 and step.failed == 0 and step.dropped == 0 and passed_on
    step.sustained = clean and complete and step.offered_ratio >= OFFERED_MIN
    if step.offered_ratio < OFFERED_MIN:
        step.note = f"generator offered only {step.offered_ratio:.0%} of the rate asked"
    elif not clean:
        step.note = "refused/failed/dropped at the collector"
    elif not complete:
        step.note = f"{step.accepted - (step.arrived or 0):.0f} accepted but not stored"
    return step


# ---------------------------------------------------------------- report
def sustained_rate(steps: list[Step], signal: str, target: str) -> int:
    ok = [s.rate for s in steps if s.signal == signal and s.target == target and s.sustained]
    return max(ok, default=0)


def report(steps: list[Step], meta: dict) -> dict:
    signals = sorted({s.signal for s in steps}, key=list(STEPS).index)
    summary = {}
    for signal in signals:
        e2e, ceiling = sustained_rate(steps, signal, "end-to-end"), sustained_rate(steps, signal, "ceiling")
        summary[signal] = {"end_to_end_sustained": e2e, "ceiling_sustained": ceiling,
                           "ratio": round(e2e / ceiling, 2) if ceiling else None}
    result = {"meta": meta, "summary": summary, "steps": [asdict(s) for s in steps]}
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"{'signal':8} {'target':11} {'rate/s':>7} {'offered':>8} {'accepted':>9} {'refused':>8} {'failed':>7} "
          f"{'dropped':>8} {'arrived':>9} {'coll.cpu':>8} {'coll.MiB':>8} {'gen.cpu':>7}  sustained")
    for s in steps:
        coll = s.resources.get("otel-collector" if s.target == "end-to-end" else "collector-ceiling", {})
        gen = s.resources.get("telemetrygen", {})
        arrived = "-" if s.arrived is None else f"{s.arrived:.0f}"
        print(f"{s.signal:8} {s.target:11} {s.rate:>7} {s.offered_ratio:>8.0%} {s.accepted:>9.0f} {s.refused:>8.0f} "
              f"{s.failed:>7.0f} {s.dropped:>8.0f} {arrived:>9} {coll.get('cpu_cores', 0):>8.2f} "
              f"{coll.get('rss_mib', 0):>8.0f} {gen.get('cpu_cores', 0):>7.2f}  {'yes' if s.sustained else 'no: ' + s.note}")
    print()
    for signal, v in summary.items():
        ratio = "n/a" if v["ratio"] is None else f"{v['ratio']:.2f}"
        print(f"{signal}: sustained {v['end_to_end_sustained']}/s end to end, {v['ceiling_sustained']}/s "
              f"collector alone; end-to-end / ceiling = {ratio}")
    print(f"written: {OUT_JSON.relative_to(REPO)}", end="")
    try:
        plot(steps, summary)
        print(f", {OUT_PNG.relative_to(REPO)}")
    except ImportError:
        print(" (no matplotlib: no plot)")
    return result


def plot(steps: list[Step], summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    signals = list(summary)
    fig, axes = plt.subplots(2, len(signals), figsize=(5 * len(signals), 8), squeeze=False)
    for col, signal in enumerate(signals):
        ax = axes[0][col]
        for target, style in (("end-to-end", "o-"), ("ceiling", "s--")):
            ss = [s for s in steps if s.signal == signal and s.target == target]
            ax.plot([s.rate for s in ss], [s.accepted / s.duration_s for s in ss], style, label=f"{target}: accepted/s")
            if target == "end-to-end" and any(s.arrived is not None for s in ss):
                ax.plot([s.rate for s in ss], [(s.arrived or 0) / s.duration_s for s in ss], "^:", label="arrived/s")
        rates = [s.rate for s in steps if s.signal == signal]
        ax.plot(rates, rates, color="grey", linewidth=0.8, label="offered")
        ax.set_title(f"{signal}: offered vs delivered")
        ax.set_xlabel(f"{ITEM[signal]} offered per second")
        ax.legend(fontsize=8)
        ax2 = axes[1][col]
        ss = [s for s in steps if s.signal == signal and s.target == "end-to-end"]
        for svc in ("otel-collector", "jaeger", "prometheus", "telemetrygen"):
            ax2.plot([s.rate for s in ss], [s.resources.get(svc, {}).get("rss_mib", 0) for s in ss], "o-", label=svc)
        ax2.set_title(f"{signal}: peak RSS per component (MiB)")
        ax2.set_xlabel(f"{ITEM[signal]} offered per second")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT_PNG, dpi=80)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--signals", default="traces,metrics,logs")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per step")
    ap.add_argument("--smoke", action="store_true", help="one low step per signal, briefly (make test)")
    ap.add_argument("--keep", action="store_true", help="leave the obs-bench project running")
    a = ap.parse_args(argv)
    signals = [s for s in a.signals.split(",") if s]
    duration = 8.0 if a.smoke else a.duration
    env = {"COMPOSE_PROJECT_NAME": PROJECT, "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(12),
           "DEMO_ADMIN_TOKEN": secrets.token_urlsafe(12), "SLACK_WEBHOOK_URL": "http://alert-sink:8090/slack/x",
           "SMTP_AUTH_PASSWORD": ""}
    env.update({k: v for k, v in os.environ.items() if k.endswith("_IMAGE") or k.startswith("BENCH_")})
    bench = Bench(env, keep=a.keep)
    steps: list[Step] = []
    try:
        up_s = bench.up(SERVICES)
        print(f"obs-bench up in {up_s:.0f} s; a generator worker per {PER_WORKER} items/s, {duration:g} s per step")
        for signal in signals:
            for rate in STEPS[signal][:1] if a.smoke else STEPS[signal]:
                for target in ("end-to-end", "ceiling"):
                    if signal == "logs" and target == "end-to-end":
                        continue  # Loki is not part of obs-bench (see the README)
                    step = run_step(bench, signal, target, rate, duration)
                    steps.append(step)
                    coll = step.resources.get("otel-collector" if target == "end-to-end" else "collector-ceiling", {})
                    print(f"  {signal} {target} {rate}/s: accepted {step.accepted:.0f}, arrived "
                          f"{'-' if step.arrived is None else f'{step.arrived:.0f}'}, collector "
                          f"{coll.get('cpu_cores', 0):.2f} cores {coll.get('rss_mib', 0):.0f} MiB: "
                          f"{'sustained' if step.sustained else step.note}", flush=True)
        report(steps, {"duration_s": duration, "items_per_worker": PER_WORKER, "smoke": a.smoke,
                       "generator_cpus": os.environ.get("BENCH_GENERATOR_CPUS", "0.8"), "up_s": round(up_s, 1)})
    finally:
        bench.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
