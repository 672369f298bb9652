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
from scripts import compose_info, validate  # noqa: E402

PROJECT = "obs-bench"
OUT_JSON = REPO / "build" / "bench-stack.json"
OUT_PNG = REPO / "build" / "bench-stack.png"
SERVICES = ["prometheus", "jaeger", "otel-collector-volume", "otel-collector", "collector-ceiling"]
# Rate steps (items per second) per signal; --smoke runs the first only, briefly.
STEPS = {
    "traces": [2500, 5000, 10000, 20000, 40000, 60000],
    "metrics": [5000, 10000, 20000, 30000],
    "logs": [5000, 10000, 20000, 30000],
}
# The collector each leg offers its load to: the stack's, or the one that discards it.
COLLECTOR = {"end-to-end": "otel-collector", "ceiling": "collector-ceiling"}
# What the collector counts per signal (otelcol_<kind>_<item>), and telemetrygen's name.
ITEM = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}
# Items per second per telemetrygen worker. Each worker is paced by a limiter of burst 1:
# above ~1000/s its sleeps overshoot and it offers 10 % less than asked; 500/s offers ~98 %.
# Metrics: with --unique-timeseries, telemetrygen (0.161) appends the unique attribute to
# the worker's attribute list at every point and never resets it, so a point costs
# O(points that worker sent so far): 20 s runs capped the generator near 12k points/s.
# Runs of METRICS_RUN_S each start afresh. Measured at 20k points/s asked (2 cores):
# 50 workers of 400/s in 5 s runs offered 87-89 %, on ~0.35 of the generator's core;
# 10 s runs 79 %, 2.5 s runs 89 %, 100 workers of 200/s 62 %, 1.5 cores 87 %.
PER_WORKER = {"traces": 500, "metrics": 400, "logs": 500}
METRICS_RUN_S = 5.0
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

    def generator_cpus(self) -> float:
        """The generator's CPU bound, as compose resolves it (docker-compose.bench.yml)."""
        config = json.loads(self.compose("--profile", "generator", "config", "--format", "json").stdout)
        return float(config["services"]["telemetrygen"]["cpus"])

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


# Instant-query APIs that answer in Prometheus' vector format: service -> (port, path).
QUERY_API = {"prometheus": (9090, "/api/v1/query"), "loki": (3100, "/loki/api/v1/query")}


def instant_query(bench: Bench, service: str, expr: str) -> float:
    """The sum of an instant query's result vector (PromQL or LogQL)."""
    import urllib.parse

    port, path = QUERY_API[service]
    body = json.loads(_get(bench.url(service, port) + path + "?" + urllib.parse.urlencode({"query": expr})))
    return sum(float(r["value"][1]) for r in body["data"]["result"])


def counted_until(count, expected: float, timeout: float = 30) -> float:
    """count() once a second until it reaches `expected` or `timeout` s have passed: a
    backend that batches stores the last items a little after the collector sent them."""
    deadline = time.monotonic() + timeout
    while (n := count()) < expected and time.monotonic() < deadline:
        time.sleep(1)
    return n


# ---------------------------------------------------------------- resources
class Stats(threading.Thread):
    """Resources of the project's containers (the generator included) during a step, from
    the Engine API's cumulative counters: CPU as the CPU time each service used from the
    step's start until it was drained, per second of load (cores); memory as the peak of
    its usage without page cache (what `docker stats` shows). A container that starts
    during the step (each generator run) counts all of its CPU time; polled every
    POLL_S, so at most that much of a generator run's end is missed."""

    POLL_S = 0.5

    def __init__(self):
        super().__init__(daemon=True)
        import docker

        self.client = docker.from_env()
        self.service: dict[str, str] = {}  # container id -> compose service
        self.cpu_ns: dict[str, tuple[int, int]] = {}  # container id -> (CPU ns at first sight, latest)
        self.rss: dict[str, float] = {}  # service -> peak MiB
        self.polls = 0
        self._stop_event = threading.Event()

    def poll(self) -> None:
        for c in self.client.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"}):
            try:
                s = self.client.api.stats(c.id, stream=False, one_shot=True)
                cpu_ns = s["cpu_stats"]["cpu_usage"]["total_usage"]
            except Exception:  # it exited between list and stats: keep what we had
                continue
            self.service[c.id] = c.labels.get("com.docker.compose.service", c.name)
            first = self.cpu_ns.get(c.id, (cpu_ns if self.polls == 0 else 0, 0))[0]
            self.cpu_ns[c.id] = (first, cpu_ns)
            svc = self.service[c.id]
            self.rss[svc] = max(self.rss.get(svc, 0.0), _working_set(s.get("memory_stats", {})) / 2**20)
        self.polls += 1

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.poll()
            self._stop_event.wait(self.POLL_S)

    def stop(self, load_s: float) -> dict[str, dict[str, float]]:
        self._stop_event.set()
        self.join(30)
        cpu_s: dict[str, float] = {}
        for cid, (first, last) in self.cpu_ns.items():
            cpu_s[self.service[cid]] = cpu_s.get(self.service[cid], 0.0) + (last - first) / 1e9
        return {svc: {"cpu_cores": round(seconds / load_s, 3), "rss_mib": round(self.rss.get(svc, 0.0), 1)}
                for svc, seconds in cpu_s.items()}


def _working_set(mem: dict) -> float:
    """Memory usage without inactive page cache, as `docker stats` computes it (cgroup v1
    and v2 name the field differently)."""
    usage = mem.get("usage", 0)
    stats = mem.get("stats", {})
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return usage - cache if cache < usage else usage


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
    lossless: bool = False  # nothing refused, dropped or failed; all of it arrived
    sustained: bool = False  # lossless, and the generator offered the rate asked
    note: str = ""


def generate(bench: Bench, signal: str, endpoint: str, rate: int, seconds: float, run_id: str) -> None:
    workers = max(1, -(-rate // PER_WORKER[signal]))
    per_worker = rate / workers
    args = [signal, f"--otlp-endpoint={endpoint}:4317", "--otlp-insecure",
            # A batch per worker about every second (log records and metric points).
            f"--workers={workers}", f"--rate={per_worker:g}", f"--batch-size={max(1, int(per_worker))}",
            f"--telemetry-attributes=bench.run=\"{run_id}\""]
    if signal == "traces":
        args.append("--child-spans=9")  # 10 spans per trace, like a small request
    if signal == "metrics":
        # One series per point each second: `rate` series at 1 Hz (one series at that rate
        # would only collide on Prometheus' millisecond timestamps).
        args += ["--unique-timeseries", "--metric-type=Sum"]
    run_s = METRICS_RUN_S if signal == "metrics" else seconds
    left = seconds
    while left > 0:
        bench.compose("run", "--rm", "--no-deps", "--name", f"{PROJECT}-generator", "telemetrygen", *args,
                      f"--duration={min(run_s, left):g}s", timeout=run_s + 120)
        left -= run_s


def arrived_in_backend(bench: Bench, signal: str, run_id: str, before: dict[str, float], window_s: float,
                       expected: float) -> float | None:
    if signal == "traces":
        # Spans Jaeger's storage exporter wrote, since the step began.
        return counted_until(lambda: delta(counters(bench, "jaeger"), before, "otelcol_exporter_sent_spans"),
                             expected)
    if signal == "metrics":
        # Every point telemetrygen sent for this step is a sample of gen{bench_run=...}.
        return instant_query(bench, "prometheus",
                             f'sum(count_over_time(gen_total{{bench_run="{run_id}"}}[{int(window_s) + 60}s]))')
    if signal == "logs":
        # Log records of this step in Loki (bench.run is structured metadata there).
        expr = (f'sum(count_over_time({{service_name="telemetrygen"}} | bench_run="{run_id}" '
                f'[{int(window_s) + 60}s]))')
        return counted_until(lambda: instant_query(bench, "loki", expr), expected)
    return None


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
    service = COLLECTOR[target]
    item = ITEM[signal]
    run_id = secrets.token_hex(4)
    step = Step(signal, target, rate, duration, asked=int(rate * duration))
    before = counters(bench, service)
    jaeger_before = counters(bench, "jaeger") if target == "end-to-end" else {}
    stats = Stats()
    stats.poll()  # the containers already running, before the generator starts
    stats.start()
    t0 = time.monotonic()
    try:
        generate(bench, signal, service, rate, duration, run_id)
    finally:
        elapsed = time.monotonic() - t0
        drain(bench, service)
        step.resources = stats.stop(elapsed)
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
    step.lossless = clean and complete
    step.sustained = step.lossless and step.offered_ratio >= OFFERED_MIN
    if step.offered_ratio < OFFERED_MIN:
        step.note = f"generator offered only {step.offered_ratio:.0%} of the rate asked"
    elif not clean:
        step.note = "refused/failed/dropped at the collector"
    elif not complete:
        step.note = f"{step.accepted - (step.arrived or 0):.0f} accepted but not stored"
    return step


# ---------------------------------------------------------------- report
def summarize(steps: list[Step], signal: str) -> dict:
    """Sustained rates of both legs over the rates the generator could offer to both (a
    step it fell short on says nothing about the stack), and their ratio. When both legs
    carried every such rate, the ceiling lies above what the generator could offer here
    and the ratio is a lower bound."""
    legs = {target: {s.rate: s for s in steps if s.signal == signal and s.target == target}
            for target in ("end-to-end", "ceiling")}
    if not legs["end-to-end"]:
        ceiling = max((r for r, s in legs["ceiling"].items() if s.sustained), default=0)
        return {"end_to_end_sustained": None, "ceiling_sustained": ceiling, "end_to_end_lossless_max": None,
                "ratio": None, "generator_limit": None, "lower_bound": False}
    offered = sorted(r for r in legs["end-to-end"] if r in legs["ceiling"]
                     and min(legs[t][r].offered_ratio for t in legs) >= OFFERED_MIN)
    best = {t: max((r for r in offered if legs[t][r].sustained), default=0) for t in legs}
    short = [r for r in legs["end-to-end"] if r not in offered]
    # What the stack carried without loss, whatever the generator managed to offer.
    carried = max((s.accepted / s.duration_s for s in legs["end-to-end"].values() if s.lossless), default=0)
    return {"end_to_end_sustained": best["end-to-end"], "ceiling_sustained": best["ceiling"],
            "end_to_end_lossless_max": round(carried),
            "ratio": round(best["end-to-end"] / best["ceiling"], 2) if best["ceiling"] else None,
            "generator_limit": min(short) if short else None,
            "lower_bound": bool(offered) and best["end-to-end"] == best["ceiling"] == offered[-1]}


def report(steps: list[Step], meta: dict) -> dict:
    signals = sorted({s.signal for s in steps}, key=list(STEPS).index)
    summary = {signal: summarize(steps, signal) for signal in signals}
    result = {"meta": meta, "summary": summary, "steps": [asdict(s) for s in steps]}
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"{'signal':8} {'target':11} {'rate/s':>7} {'offered':>8} {'accepted':>9} {'refused':>8} {'failed':>7} "
          f"{'dropped':>8} {'arrived':>9} {'coll.cpu':>8} {'coll.MiB':>8} {'gen.cpu':>7}  sustained")
    for s in steps:
        coll = s.resources.get(COLLECTOR[s.target], {})
        gen = s.resources.get("telemetrygen", {})
        arrived = "-" if s.arrived is None else f"{s.arrived:.0f}"
        print(f"{s.signal:8} {s.target:11} {s.rate:>7} {s.offered_ratio:>8.0%} {s.accepted:>9.0f} {s.refused:>8.0f} "
              f"{s.failed:>7.0f} {s.dropped:>8.0f} {arrived:>9} {coll.get('cpu_cores', 0):>8.2f} "
              f"{coll.get('rss_mib', 0):>8.0f} {gen.get('cpu_cores', 0):>7.2f}  {'yes' if s.sustained else 'no: ' + s.note}")
    print()
    for signal, v in summary.items():
        if v["end_to_end_sustained"] is None:
            print(f"{signal}: sustained {v['ceiling_sustained']}/s collector alone; end to end not run")
            continue
        ratio = "n/a" if v["ratio"] is None else f"{'>= ' if v['lower_bound'] else ''}{v['ratio']:.2f}"
        limit = (f" (the generator could not offer {v['generator_limit']}/s; the most carried end to end "
                 f"without loss: {v['end_to_end_lossless_max']}/s)" if v["generator_limit"] else "")
        print(f"{signal}: sustained {v['end_to_end_sustained']}/s end to end, {v['ceiling_sustained']}/s "
              f"collector alone{limit}; end-to-end / ceiling = {ratio}")
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
            if not ss:
                continue
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
        shown = ("otel-collector", "jaeger", "prometheus", "loki", "telemetrygen")
        if not ss:  # only the collector-alone leg ran (logs without Loki)
            ss = [s for s in steps if s.signal == signal]
            shown = (COLLECTOR["ceiling"], "telemetrygen")
        for svc in (svc for svc in shown if any(svc in s.resources for s in ss)):
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
    # Logs end to end need Loki; without its image only the collector-alone leg runs.
    loki_skipped = validate.missing_image("LOKI_IMAGE")
    try:
        up_s = bench.up(SERVICES + ([] if loki_skipped else ["loki"]))
        print(f"obs-bench up in {up_s:.0f} s; {duration:g} s per step; generator workers of "
              + ", ".join(f"{n}/s ({s})" for s, n in PER_WORKER.items()))
        if loki_skipped and "logs" in signals:
            print(f"  logs end to end: skipped, {loki_skipped}")
        for signal in signals:
            for rate in STEPS[signal][:1] if a.smoke else STEPS[signal]:
                for target in ("end-to-end", "ceiling"):
                    if signal == "logs" and target == "end-to-end" and loki_skipped:
                        continue
                    step = run_step(bench, signal, target, rate, duration)
                    steps.append(step)
                    coll = step.resources.get(COLLECTOR[target], {})
                    print(f"  {signal} {target} {rate}/s: accepted {step.accepted:.0f}, arrived "
                          f"{'-' if step.arrived is None else f'{step.arrived:.0f}'}, collector "
                          f"{coll.get('cpu_cores', 0):.2f} cores {coll.get('rss_mib', 0):.0f} MiB: "
                          f"{'sustained' if step.sustained else step.note}", flush=True)
        report(steps, {"duration_s": duration, "items_per_worker": PER_WORKER, "smoke": a.smoke,
                       "logs_end_to_end_skipped": loki_skipped,
                       "generator_cpus": bench.generator_cpus(), "host_cpus": os.cpu_count(), "up_s": round(up_s, 1)})
    finally:
        bench.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
