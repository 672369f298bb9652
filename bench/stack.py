#!/usr/bin/env python3
"""`make bench-stack`: how much telemetry the stack carries on this machine, side by side
with its ceiling.

A compose project of its own (obs-bench, bench/project.py) runs Prometheus, Jaeger and the
collector (Loki where its image exists), plus a second collector whose exporters discard
everything (the ceiling). For each signal and rate step, telemetrygen offers that rate for
a while, first to the stack's collector (end to end), then to the ceiling (bench/steps.py).
Per step: what the generator counted, what the collector accepted, refused, sent, failed
and dropped, what the backend returns of the step, CPU and RSS per container.

A step is lossless when nothing was refused, dropped or failed and the backend returns
exactly what the collector accepted; sustained when, in addition, the generator offered
the rate. The figure of merit is a ratio measured in one run, so it holds on a noisy
machine: end-to-end sustained rate / ceiling sustained rate.

    python3 bench/stack.py [--signals traces,metrics,logs] [--duration 20] [--smoke] [--keep]

Output: a table on stdout (a progress line per step), build/bench-stack.json and .png;
--smoke (make test) writes build/bench-stack-smoke.json and .png instead, so it never
overwrites the figures the README cites.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.project import PROJECT, Project  # noqa: E402
from bench.report import report  # noqa: E402
from bench.steps import COLLECTOR, PER_WORKER, run_step  # noqa: E402
from scripts import validate  # noqa: E402

OUT = {False: REPO / "build" / "bench-stack.json", True: REPO / "build" / "bench-stack-smoke.json"}
SERVICES = ["prometheus", "jaeger", "volume-init", "otel-collector", "collector-ceiling"]
# Rate steps (items per second) per signal; --smoke runs the first only, briefly.
STEPS = {
    "traces": [2500, 5000, 10000, 20000, 40000, 60000],
    "metrics": [5000, 10000, 20000, 30000],
    "logs": [5000, 10000, 20000, 30000],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--signals", default="traces,metrics,logs")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per step")
    ap.add_argument("--smoke", action="store_true", help="one low step per signal, briefly (make test)")
    ap.add_argument("--keep", action="store_true", help="leave the obs-bench project running")
    a = ap.parse_args(argv)
    signals = [s for s in a.signals.split(",") if s]
    duration = 8.0 if a.smoke else a.duration
    # The services it runs take no secret: none is written.
    env = {"COMPOSE_PROJECT_NAME": PROJECT}
    env.update({k: v for k, v in os.environ.items() if k.endswith("_IMAGE") or k.startswith("BENCH_")})
    project = Project(env, keep=a.keep)
    steps = []
    # Logs end to end need Loki; without its image only the collector-alone leg runs.
    loki_skipped = validate.missing_image("LOKI_IMAGE")
    try:
        t0 = time.monotonic()
        project.up(SERVICES + ([] if loki_skipped else ["loki"]))
        up_s = time.monotonic() - t0
        gen_cpus = project.generator_cpus()
        print(f"obs-bench up in {up_s:.0f} s; {duration:g} s per step; generator bounded to {gen_cpus:g} CPU, "
              "workers of " + ", ".join(f"{n}/s ({s})" for s, n in PER_WORKER.items()))
        if loki_skipped and "logs" in signals:
            print(f"  logs end to end: skipped, {loki_skipped}")
        for signal in signals:
            for rate in STEPS[signal][:1] if a.smoke else STEPS[signal]:
                for target in ("end-to-end", "ceiling"):
                    if signal == "logs" and target == "end-to-end" and loki_skipped:
                        continue
                    step = run_step(project, signal, target, rate, duration, gen_cpus)
                    steps.append(step)
                    coll = step.resources.get(COLLECTOR[target], {})
                    arrived = "-" if step.arrived is None else f"{step.arrived:.0f}"
                    print(f"  {signal} {target} {rate}/s: offered {step.offered_ratio:.0%}, accepted "
                          f"{step.accepted:.0f}, arrived {arrived}, collector {coll.get('cpu_cores', 0):.2f} cores "
                          f"{coll.get('rss_mib', 0):.0f} MiB: {'sustained' if step.sustained else step.note}",
                          flush=True)
        report(steps, {"duration_s": duration, "items_per_worker": PER_WORKER, "smoke": a.smoke,
                       "logs_end_to_end_skipped": loki_skipped, "generator_cpus": gen_cpus,
                       "host_cpus": os.cpu_count(), "up_s": round(up_s, 1)}, OUT[a.smoke])
    finally:
        project.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
