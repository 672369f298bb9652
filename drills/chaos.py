#!/usr/bin/env python3
"""`make chaos [SEED=n] [MINUTES=m] [FAULTS=a,b]`: faults that come and go by themselves.

A seeded scheduler switches faults of drills/catalogue.py on and off, one at a time: each
is held at least as long as its alerts need to reach the sink (the fault's detect_s) plus
a random extra, then cleared, then a random quiet gap follows. The same seed and the same
faults give the same plan. Every window (fault, start, end, the alerts it must fire) is
written to a JSON log as it closes, so `make scorecard` can score the run, also a run that
was stopped early.

Faults are always cleared: at the end, on Ctrl-C or SIGTERM (`make chaos-stop`), and when
the scheduler is killed outright: a guard process it starts waits on a pipe from it and,
when the pipe closes (its parent gone, however), clears every fault switch and starts every
stopped service.

    python3 drills/chaos.py start [--seed N] [--minutes M] [--faults a,b] [COMPOSE...]
                                    in the background (make chaos); the log path is printed
    python3 drills/chaos.py run ...   in the foreground (Ctrl-C stops it)
    python3 drills/chaos.py stop      stop a background run (make chaos-stop): SIGTERM to its
                                      process group, once its start time shows it is still that run
    python3 drills/chaos.py plan ...  print the plan a seed makes, change nothing

Run the stack with the drill profile (make drill-up): alerts then fire within seconds.
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.catalogue import FAULTS, Fault  # noqa: E402
from drills.target import Target  # noqa: E402

LOG_DIR = REPO / "build" / "chaos"
PID_FILE = LOG_DIR / "chaos.pid"
GAP_S = (30, 90)          # quiet time between two faults
EXTRA_HOLD_S = (15, 60)   # held this much longer than the fault's alerts need


@dataclass
class Step:
    fault: Fault
    hold_s: float
    gap_s: float


def plan(seed: int, minutes: float, names: list[str], gap_s: tuple = GAP_S,
         extra_hold_s: tuple = EXTRA_HOLD_S, count: int = 0) -> list[Step]:
    """The schedule a seed makes: faults drawn from `names` like cards from a shuffled deck
    (each once before any comes again), holds and gaps within bounds, as many as fit in
    `minutes`."""
    rng = random.Random(seed)
    steps, used, deck = [], 0.0, []
    while True:
        if not deck:
            deck = sorted(names)
            rng.shuffle(deck)
        fault = FAULTS[deck.pop()]
        step = Step(fault, round(fault.detect_s + rng.uniform(*extra_hold_s)), round(rng.uniform(*gap_s)))
        if used + step.hold_s > minutes * 60 or (count and len(steps) == count):
            return steps
        steps.append(step)
        used += step.hold_s + step.gap_s


def alert_states(target: Target, fault: Fault) -> list[dict]:
    """Where each alert the fault must fire stands as it ends: firing in Prometheus,
    active or held back (inhibited) in Alertmanager."""
    try:
        prom, am = target.prometheus_alerts(), target.alertmanager_alerts()
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        return [{"error": str(exc)}]
    by_fp = {a.get("fingerprint"): a["labels"] for a in am}
    out = []
    for exp in fault.expect:
        state = {"alertname": exp.alertname, "labels": exp.labels,
                 "prometheus": sorted({a["state"] for a in prom if exp.matches(a["labels"])}),
                 "alertmanager": sorted({a["status"]["state"] for a in am if exp.matches(a["labels"])})}
        state["inhibited_by"] = sorted({by_fp.get(fp, {}).get("alertname", "?") for a in am if exp.matches(a["labels"])
                                        for fp in a["status"].get("inhibitedBy") or []})
        out.append(state)
    return out


def fault_names(text: str) -> list[str] | None:
    """`--faults a,b` (chaos and the soak): the names given, or None for every one that can run."""
    return [n for n in text.split(",") if n] or None


def usable(target: Target, names: list[str] | None) -> list[str]:
    """Faults that can run on this stack: asked for (default all), needing no history,
    every service they touch running."""
    running = {s for s, state in target.states().items() if state == "running"}
    chosen = names or [n for n, f in FAULTS.items() if not f.history]
    unknown = [n for n in chosen if n not in FAULTS]
    if unknown:
        raise SystemExit(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    return [n for n in chosen if set(FAULTS[n].services) <= running]


class Stopped(Exception):
    pass


def run(target: Target, seed: int, minutes: float, names: list[str] | None, log: Path,
        gap_s: tuple = GAP_S, extra_hold_s: tuple = EXTRA_HOLD_S, count: int = 0,
        stop: threading.Event | None = None) -> dict:
    """Runs the seeded plan; a signal (in the main thread) or `stop` (from the thread that
    started it: the soak) ends it early, every fault cleared while the stack is still up."""
    names = usable(target, names)
    if not names:
        raise SystemExit("no fault of the catalogue can run on this stack (are shop, inventory and loadgen up?)")
    steps = plan(seed, minutes, names, gap_s, extra_hold_s, count)
    record = {"seed": seed, "minutes": minutes, "faults": names, "started": time.time(), "ended": None,
              "stopped_by": None, "windows": []}
    log.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        tmp = log.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(log)

    def on_signal(signum, _frame):
        raise Stopped(signal.Signals(signum).name)

    stop = stop or threading.Event()  # never set: a plain sleep

    def pause(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopped("stopped by its caller")

    if threading.current_thread() is threading.main_thread():  # the soak runs it in a thread of its own
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    # The guard: clears the faults once this process is gone, whatever ends it.
    guard = subprocess.Popen([sys.executable, __file__, "guard", "--", *target.compose_cmd], stdin=subprocess.PIPE,
                             env={**os.environ, "DEMO_ADMIN_TOKEN": target.token})
    save()
    print(f"chaos: seed {seed}, {len(steps)} faults over {minutes:g} min from {', '.join(names)}; log {log}",
          flush=True)
    current = None
    try:
        for i, step in enumerate(steps, 1):
            start = time.time()
            current = {"fault": step.fault.name, "what": step.fault.what, "start": start, "end": None,
                       "detect_s": step.fault.detect_s,
                       "expect": [{"alertname": e.alertname, "labels": e.labels} for e in step.fault.expect],
                       "may_be_inhibited": [{"alertname": e.alertname, "labels": e.labels}
                                            for e in step.fault.may_be_inhibited]}
            target.apply(step.fault)
            print(f"chaos: [{i}/{len(steps)}] {step.fault.name} on for {step.hold_s:.0f} s", flush=True)
            pause(step.hold_s)
            current["alerts_at_end"] = alert_states(target, step.fault)
            target.clear(step.fault)
            current["end"] = time.time()
            record["windows"].append(current)
            current = None
            save()
            print(f"chaos: [{i}/{len(steps)}] {step.fault.name} cleared; quiet for {step.gap_s:.0f} s", flush=True)
            pause(step.gap_s)
        record["stopped_by"] = "end of plan"
    except Stopped as e:
        record["stopped_by"] = str(e)
    finally:
        problems = target.reset()
        if current is not None:  # stopped inside a window: it ended now
            current["end"] = time.time()
            record["windows"].append(current)
        record["ended"] = time.time()
        save()
        guard.stdin.close()
        guard.wait(120)
        for problem in problems:
            print(f"chaos: {problem}", file=sys.stderr)
        print(f"chaos: stopped ({record['stopped_by']}); every fault cleared; log {log}", flush=True)
    return record


def guard(compose: list[str]) -> int:
    """Waits until the scheduler's pipe closes, then clears every fault. Signals to the
    run's process group (`make chaos-stop`, Ctrl-C) are the scheduler's to handle: the
    guard outlives it to clear up after it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()
    problems = Target(compose or None).reset()
    for problem in problems:
        print(f"chaos guard: {problem}", file=sys.stderr)
    return 1 if problems else 0


def started_at(pid: int) -> str | None:
    """When process `pid` started (a token to tell it from a later process given the same
    pid), or None when there is no such process."""
    try:
        # Linux: field 22 of /proc/PID/stat, clock ticks after boot (after the name, which
        # is in parentheses and may hold spaces).
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has ended
    except FileNotFoundError:
        return None
    except OSError:  # no /proc (macOS): ps tells the start time to the second
        p = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True)
        return p.stdout.strip() or None


def stop(pid_file: Path = PID_FILE, timeout: float = 180) -> int:
    """`make chaos-stop`: SIGTERM to the background run's process group, only while its
    leader is the process `start` started (same pid, same start time); then waits for the
    group to end (the run clears its faults first)."""
    if not pid_file.exists():
        print("no chaos run in the background")
        return 0
    try:
        run_ = json.loads(pid_file.read_text())
        pid, started = int(run_["pid"]), run_["started"]
    except (ValueError, KeyError, TypeError):
        print(f"{pid_file} is not a chaos run's record: left alone (remove it by hand)", file=sys.stderr)
        return 1
    if started is None or started_at(pid) != started:
        print("the chaos run had already ended" + (f" (pid {pid} is another process now: not signalled)"
                                                   if started_at(pid) else ""))
        pid_file.unlink(missing_ok=True)
        return 0
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while started_at(pid) == started:  # it clears its faults before it exits
        if time.monotonic() > deadline:
            print(f"the chaos run (pid {pid}) did not end within {timeout:.0f} s", file=sys.stderr)
            return 1
        time.sleep(0.5)
    pid_file.unlink(missing_ok=True)
    print("chaos stopped; every fault cleared")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("start", "run", "stop", "plan", "guard"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--faults", default="", help="comma-separated fault names (default: every one that can run)")
    ap.add_argument("--log", type=Path, help="the JSON log (default: build/chaos/<time>-seed<N>.json)")
    ap.add_argument("--count", type=int, default=0, help="at most this many faults (default: as many as fit)")
    ap.add_argument("--gap", default=f"{GAP_S[0]}-{GAP_S[1]}", help="quiet seconds between faults, MIN-MAX")
    ap.add_argument("--extra-hold", default=f"{EXTRA_HOLD_S[0]}-{EXTRA_HOLD_S[1]}",
                    help="seconds a fault is held beyond what its alerts need, MIN-MAX")
    ap.add_argument("compose", nargs="*", help="the compose command (default: docker compose)")
    a = ap.parse_args(argv)
    names = fault_names(a.faults)
    gap, extra = (tuple(float(x) for x in v.split("-")) for v in (a.gap, a.extra_hold))
    if a.command == "guard":
        return guard(a.compose)
    if a.command == "plan":
        for s in plan(a.seed, a.minutes, names or [n for n, f in FAULTS.items() if not f.history], gap, extra, a.count):
            print(f"{s.fault.name:18} hold {s.hold_s:4.0f} s, then quiet {s.gap_s:3.0f} s")
        return 0
    if a.command == "stop":
        return stop()
    log = a.log or LOG_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-seed{a.seed}.json"
    if a.command == "start":
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        out = log.with_suffix(".out")
        with open(out, "w") as f:
            child = subprocess.Popen([sys.executable, __file__, "run", f"--seed={a.seed}", f"--minutes={a.minutes}",
                                      f"--faults={a.faults}", f"--log={log}", f"--gap={a.gap}",
                                      f"--extra-hold={a.extra_hold}", f"--count={a.count}", "--", *a.compose],
                                     stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        # Its process group (it leads a session of its own) and when it started: `stop`
        # signals that group only while its leader is still this process.
        PID_FILE.write_text(json.dumps({"pid": child.pid, "started": started_at(child.pid)}) + "\n")
        print(f"chaos running in the background (pid {child.pid}): progress in {out}, log {log}; "
              "`make chaos-stop` stops it, `make scorecard` scores it")
        return 0
    target = Target(a.compose or None)
    run(target, a.seed, a.minutes, names, log, gap, extra, a.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
