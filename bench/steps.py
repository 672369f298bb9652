"""One step of the benchmark: telemetrygen offers one signal at one rate to one collector
(the stack's, end to end, or the one that discards everything, the ceiling); the step
counts what the generator produced, what the collector accepted, refused, failed and
dropped, and what the backend holds of it, then judges it (judge())."""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from . import probes
from .project import Project
from .resources import Stats

# The collector each leg offers its load to: the stack's, or the one that discards it.
COLLECTOR = {"end-to-end": "otel-collector", "ceiling": "collector-ceiling"}
# What the collector counts per signal (otelcol_<kind>_<item>).
ITEM = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}
# Items per second per telemetrygen worker: each worker is paced by a limiter of burst 1,
# whose sleeps overshoot on a busy machine, so fewer, faster workers offer less than asked.
PER_WORKER = {"traces": 500, "metrics": 400, "logs": 500}
# Spans per trace the generator makes (--child-spans=9 plus the parent): a small request.
SPANS_PER_TRACE = 10
# With --unique-timeseries telemetrygen grows each worker's attribute list at every point
# and never resets it, so a point costs more the longer a run lasts: metrics run in runs
# of this many seconds, each starting afresh (README, "Capacity").
METRICS_RUN_S = 5.0
# A step counts as offered at its rate when the generator produced at least this share of
# it over the time it really ran; below, the step is generator-limited (the generator's
# own count shows it and the collector refused nothing) and says nothing about the stack.
OFFERED_MIN = 0.9


@dataclass
class Step:
    signal: str
    target: str  # "end-to-end" or "ceiling"
    rate: int
    duration_s: float  # what each generator run was asked for, summed
    generated: int | None = None  # the generator's own count (its log), None if it printed none
    window_s: float = 0.0  # how long items kept arriving at the collector, summed over runs
    offered_ratio: float = 0.0  # generated / (rate x window_s)
    accepted: float = 0
    refused: float = 0
    sent: float = 0
    failed: float = 0
    dropped: float = 0
    drained: bool = True  # the collector's queues emptied after the step
    queued_after: float = 0
    arrived: float | None = None  # what the backend returns of this step (None: no backend)
    resources: dict = field(default_factory=dict)
    generator_cpus: float = 1.0
    lossless: bool = False
    generator_limited: bool = False
    sustained: bool = False
    note: str = ""

    @property
    def asked(self) -> float:
        return self.rate * self.duration_s


def judge(s: Step) -> Step:
    """Verdicts by equality. Lossless: the queues drained, nothing refused, failed or
    dropped, every item the generator counted reached the collector, and the backend
    returns exactly what the collector accepted. Generator-limited: the generator offered
    less than OFFERED_MIN of the rate over the time it ran while the collector refused
    nothing (it did not push back), or the generator used up its CPU bound. Sustained:
    lossless at the rate asked."""
    problems = []
    if not s.drained:
        problems.append(f"the collector's queues did not drain ({s.queued_after:.0f} items left)")
    for what in ("refused", "failed", "dropped"):
        if getattr(s, what):
            problems.append(f"{getattr(s, what):.0f} {what} at the collector")
    offered = s.accepted + s.refused
    if s.generated is not None and s.generated != offered:
        problems.append(f"the generator counted {s.generated}, the collector saw {offered:.0f}")
    if s.arrived is not None and s.arrived != s.accepted:
        problems.append(f"{s.accepted:.0f} accepted, {s.arrived:.0f} returned by the backend")
    s.lossless = not problems
    gen_cpu = s.resources.get("telemetrygen", {}).get("cpu_cores", 0.0)
    short = s.offered_ratio < OFFERED_MIN
    s.generator_limited = (short and s.refused == 0) or gen_cpu >= 0.95 * s.generator_cpus
    s.sustained = s.lossless and not short
    if problems:
        s.note = "; ".join(problems)
    elif short:
        s.note = f"generator-limited: it offered {s.offered_ratio:.0%} of the rate asked"
    return s


class Arrivals(threading.Thread):
    """Polls the collector's count of items received (accepted + refused) while the
    generator runs, so each run's receive window is measured: from the first batch to the
    last, plus one batch period (the first batch was generated before it arrived)."""

    POLL_S = 0.25

    def __init__(self, project: Project, service: str, item: str):
        super().__init__(daemon=True)
        self.project, self.service, self.item = project, service, item
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def received(self) -> float:
        c = probes.counters(self.project, self.service)
        return probes.delta(c, {}, f"otelcol_receiver_accepted_{self.item}") + \
            probes.delta(c, {}, f"otelcol_receiver_refused_{self.item}")

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.samples.append((time.monotonic(), self.received()))
            except OSError:
                pass
            self._stop_event.wait(self.POLL_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def window(self, start: float, end: float) -> float:
        """Seconds during which items arrived between `start` and `end` (monotonic)."""
        inside = [(t, n) for t, n in self.samples if start <= t <= end]
        changes = [t for (t, n), (_, prev) in zip(inside[1:], inside) if n != prev]
        if not changes:
            return 0.0
        if len(changes) == 1:
            return self.POLL_S
        period = (changes[-1] - changes[0]) / (len(changes) - 1)
        return changes[-1] - changes[0] + period


GENERATED = re.compile(r'(?:traces|metrics|logs) generated.*?"(?:traces|metrics|logs)":\s*(\d+)')


def generate(project: Project, signal: str, endpoint: str, rate: int, seconds: float, run_id: str,
             arrivals: Arrivals) -> tuple[int | None, float]:
    """Runs telemetrygen for `seconds` at `rate` items/s in as many runs as the signal
    needs. Returns (items it says it generated, or None; the receive window in s)."""
    workers = max(1, -(-rate // PER_WORKER[signal]))
    per_worker = rate / workers
    args = [signal, f"--otlp-endpoint={endpoint}:4317", "--otlp-insecure",
            # A batch per worker about every second (log records and metric points).
            f"--workers={workers}", f"--rate={per_worker:g}", f"--batch-size={max(1, int(per_worker))}",
            f"--telemetry-attributes=bench.run=\"{run_id}\""]
    if signal == "traces":
        args.append(f"--child-spans={SPANS_PER_TRACE - 1}")
    if signal == "metrics":
        # One series per point each second: `rate` series at 1 Hz (one series at that rate
        # would only collide on Prometheus' millisecond timestamps).
        args += ["--unique-timeseries", "--metric-type=Sum"]
    run_s = METRICS_RUN_S if signal == "metrics" else seconds
    left, generated, window = seconds, 0, 0.0
    counted = True
    while left > 0:
        t0 = time.monotonic()
        out = project.compose("run", "--rm", "--no-deps", "--name", f"{project.name}-generator", "telemetrygen", *args,
                              f"--duration={min(run_s, left):g}s", timeout=run_s + 120)
        time.sleep(2 * Arrivals.POLL_S)  # the last batch's arrival is sampled
        window += arrivals.window(t0, time.monotonic())
        counts = [int(n) for n in GENERATED.findall(out.stdout + out.stderr)]
        counted = counted and bool(counts)
        generated += sum(counts) * (SPANS_PER_TRACE if signal == "traces" else 1)
        left -= run_s
    return (generated if counted else None), window


def backend_count(project: Project, signal: str, run_id: str, start_wall: float, expected: float) -> float:
    """What the step's backend returns of this run (by its bench.run attribute)."""
    window = int(time.time() - start_wall) + 60
    if signal == "traces":
        return probes.settled_count(lambda: probes.jaeger_spans(project, run_id, start_wall - 5, time.time() + 5),
                                    expected)
    if signal == "metrics":
        # Every point telemetrygen sent for this step is a sample of gen{bench_run=...}.
        return probes.settled_count(lambda: probes.instant_query(
            project, "prometheus", f'sum(count_over_time(gen_total{{bench_run="{run_id}"}}[{window}s]))'), expected)
    # Log records of this step in Loki (bench.run is structured metadata there).
    expr = f'sum(count_over_time({{service_name="telemetrygen"}} | bench_run="{run_id}" [{window}s]))'
    return probes.settled_count(lambda: probes.instant_query(project, "loki", expr), expected)


def run_step(project: Project, signal: str, target: str, rate: int, duration: float, generator_cpus: float) -> Step:
    service = COLLECTOR[target]
    item = ITEM[signal]
    run_id = secrets.token_hex(4)
    step = Step(signal, target, rate, duration, generator_cpus=generator_cpus)
    before = probes.counters(project, service)
    stats, arrivals = Stats(project.name), Arrivals(project, service, item)
    stats.poll()  # the containers already running, before the generator starts
    stats.start()
    arrivals.start()
    start_wall, t0 = time.time(), time.monotonic()
    try:
        step.generated, step.window_s = generate(project, signal, service, rate, duration, run_id, arrivals)
    finally:
        arrivals.stop()
        elapsed = time.monotonic() - t0
        step.drained, step.queued_after = probes.drain(project, service)
        step.resources = stats.stop(elapsed)
    after = probes.counters(project, service)
    step.accepted = probes.delta(after, before, f"otelcol_receiver_accepted_{item}")
    step.refused = probes.delta(after, before, f"otelcol_receiver_refused_{item}")
    step.sent = probes.delta(after, before, f"otelcol_exporter_sent_{item}")
    step.failed = probes.delta(after, before, f"otelcol_exporter_send_failed_{item}")
    step.dropped = probes.delta(after, before, f"otelcol_exporter_enqueue_failed_{item}")
    if target == "end-to-end":
        step.arrived = backend_count(project, signal, run_id, start_wall, step.accepted)
    offered = step.generated if step.generated is not None else step.accepted + step.refused
    step.offered_ratio = round(offered / (rate * step.window_s), 3) if step.window_s else 0.0
    return judge(step)
