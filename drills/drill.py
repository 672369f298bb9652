#!/usr/bin/env python3
"""Fire drills: break the demo on purpose and time each alert on its way to the receiver.

    python3 drills/drill.py SCENARIO [--timeout SECONDS] [--resolve]   (make drill SCENARIO=...)
    python3 drills/drill.py --reset                                      (make drill-reset)
    python3 drills/drill.py --list

A drill records the alerts already firing, applies its fault (the demo's fault switch, or
`docker compose stop`), then polls Prometheus, Alertmanager and the alert sink every 2s until
every expected alert has reached the sink (or is held back by an inhibition in Alertmanager)
or the timeout passes. It prints, per alert, the seconds from the fault to: pending and firing
in Prometheus, active in Alertmanager, and received by the sink. Exit code 0 when every
expected alert made it, 1 otherwise. With --resolve it then clears the fault and times the
resolved notifications too. The fault stays on otherwise: look around, then `make drill-reset`.

Run the stack with the drill profile for minute-scale timings (docs/alert-training.md):
    PROMETHEUS_CONFIG_FILE=prometheus.drill.yml ALERTMANAGER_CONFIG_FILE=alertmanager.drill.yml make up

The scenarios are the faults of drills/catalogue.py, the one catalogue the fault
scheduler, the scorecard and the exercises read too.

Only the standard library: it runs with any python3 >= 3.9, no virtualenv needed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.catalogue import FAULTS, Expect, Fault  # noqa: E402
from drills.target import Target, received_at  # noqa: E402

SCENARIOS = FAULTS  # the drills are the catalogue's faults


@dataclass
class Timeline:
    expect: Expect
    pending: float | None = None
    firing: float | None = None
    am_active: float | None = None
    inhibited: float | None = None
    inhibited_by: str = ""
    at_sink: float | None = None
    resolved_at_sink: float | None = None
    before: bool = False       # already firing when the drill started

    def done(self) -> bool:
        return self.at_sink is not None or self.inhibited is not None


def _name(labels: dict) -> str:
    return f'{labels.get("alertname", "?")}{{service="{labels.get("service", "")}"}}'


def _fmt(t: float | None) -> str:
    return "-" if t is None else f"{t:5.0f}s"


def wait_for(target: Target, timelines: list[Timeline], t0: float, wall0: float, timeout: float) -> None:
    """Poll until every timeline is done or the timeout passes."""
    while True:
        now = time.monotonic() - t0
        try:
            prom = target.prometheus_alerts()
            am = target.alertmanager_alerts()
        except Exception as e:  # a stack fault may take a component away: keep polling
            print(f"  ({now:4.0f}s) poll failed: {e}", flush=True)
            prom, am = [], []
        by_fp = {a.get("fingerprint"): a["labels"] for a in am}
        for tl in timelines:
            for a in prom:
                if tl.expect.matches(a["labels"]):
                    if tl.pending is None:
                        tl.pending = now
                    if a["state"] == "firing" and tl.firing is None:
                        tl.firing = now
            for a in am:
                if tl.expect.matches(a["labels"]):
                    state = a.get("status", {}).get("state")
                    if state == "active" and tl.am_active is None:
                        tl.am_active = now
                    if state == "suppressed" and a["status"].get("inhibitedBy") and tl.inhibited is None:
                        tl.inhibited = now
                        tl.inhibited_by = ", ".join(
                            _name(by_fp.get(fp, {})) for fp in a["status"]["inhibitedBy"])
            if tl.at_sink is None:
                try:
                    got = target.sink_alerts(tl.expect.alertname, "firing")
                except Exception:  # noqa: BLE001 - the sink may be the one stopped
                    got = []
                # Only notifications received after the fault count.
                if any(tl.expect.matches(a["labels"]) and received_at(a) >= wall0 - 1 for a in got):
                    tl.at_sink = now
        if all(tl.done() for tl in timelines) or now > timeout:
            return
        time.sleep(2)


def wait_resolved(target: Target, timelines: list[Timeline], t0: float, wall0: float, timeout: float) -> None:
    while True:
        now = time.monotonic() - t0
        for tl in timelines:
            if tl.resolved_at_sink is None and tl.at_sink is not None:
                try:
                    got = target.sink_alerts(tl.expect.alertname, "resolved")
                except Exception:  # noqa: BLE001
                    got = []
                if any(tl.expect.matches(a["labels"]) and received_at(a) >= wall0 - 1 for a in got):
                    tl.resolved_at_sink = now
        if all(tl.resolved_at_sink is not None for tl in timelines if tl.at_sink is not None) \
                or now > timeout:
            return
        time.sleep(2)


def run(target: Target, scenario: Fault, timeout: float, resolve: bool) -> int:
    print(f"drill {scenario.name}: {scenario.what}")
    ev = target.evaluation_interval()
    if ev and ev not in ("1s", "2s", "5s"):
        print(f"  note: Prometheus evaluates every {ev}; start the stack with the drill profile "
              "(make drill-up) for minute-scale drills.")
    if scenario.history:
        print(f"  note: this drill needs history underneath: `make history ENDING={scenario.history}` first.")
    if scenario.faults and not target.token:
        print("  DEMO_ADMIN_TOKEN is neither in the environment nor in .env", file=sys.stderr)
        return 2

    timelines = [Timeline(e) for e in scenario.expect]
    already = target.prometheus_alerts()
    # A critical alert still firing on a service (e.g. the burn-rate alert of an earlier drill:
    # its 6h/30m pair keeps it up to 30 minutes on a young Prometheus) inhibits that service's
    # warnings in Alertmanager. Say so up front.
    services = {e.labels.get("service") for e in scenario.expect}
    blockers = [a["labels"] for a in already if a["state"] == "firing"
                and a["labels"].get("severity") == "critical" and a["labels"].get("service") in services]
    if blockers:
        print("  note: already firing, will inhibit this service's warnings: "
              + ", ".join(map(_name, blockers)))
    for tl in timelines:
        if any(tl.expect.matches(a["labels"]) and a["state"] == "firing" for a in already):
            tl.before = True

    wall0, t0 = time.time(), time.monotonic()
    target.apply(scenario)
    for service, body in scenario.faults.items():
        print(f"  fault set on {service}: {json.dumps(body)}")
    for service in scenario.stop:
        print(f"  stopped {service}")
    print(f"  waiting up to {timeout:.0f}s for: {', '.join(str(e) for e in scenario.expect)}", flush=True)
    wait_for(target, timelines, t0, wall0, timeout)

    if resolve:
        print("  clearing the fault and waiting for resolved notifications ...", flush=True)
        target.reset()
        r_wall0, r_t0 = time.time(), time.monotonic()
        wait_resolved(target, timelines, r_t0, r_wall0, timeout)

    ok = report(scenario, timelines, resolve)
    write_log(scenario, wall0, timelines)
    watchdog = target.sink_alerts("Watchdog", "firing")
    print(f"  Watchdog at the sink: {'yes' if watchdog else 'NO -- the alerting path is broken'}")
    if not resolve:
        print("  the fault is still on: look around, then `make drill-reset`.")
    return 0 if ok and watchdog else 1


LOG_DIR = REPO / "build" / "drills"


def write_log(scenario: Fault, wall0: float, timelines: list[Timeline]) -> Path:
    """What happened, for `make record-drill`: when the fault began and, per expected
    alert, seconds from it to pending and firing in Prometheus and to the sink."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"{scenario.name}.json"
    path.write_text(json.dumps({"scenario": scenario.name, "fault_start": wall0, "alerts": [
        {"alertname": tl.expect.alertname, "labels": tl.expect.labels, "pending_s": tl.pending,
         "firing_s": tl.firing, "at_sink_s": tl.at_sink, "inhibited_s": tl.inhibited} for tl in timelines]},
        indent=2) + "\n")
    return path


def report(scenario: Fault, timelines: list[Timeline], resolve: bool) -> bool:
    print()
    cols = ["alert", "pending", "firing", "AM active", "at sink"] + (["resolved"] if resolve else [])
    rows = []
    ok = True
    for tl in timelines:
        if tl.at_sink is not None:
            verdict = "reached the sink"
        elif tl.inhibited is not None:
            verdict = f"inhibited in Alertmanager by {tl.inhibited_by or 'a critical alert'}"
        else:
            verdict = "MISSING"
            ok = False
        if tl.before:
            verdict += " (was already firing before the drill)"
        row = [str(tl.expect), _fmt(tl.pending), _fmt(tl.firing), _fmt(tl.am_active), _fmt(tl.at_sink)]
        if resolve:
            row.append(_fmt(tl.resolved_at_sink))
        rows.append((row, verdict))
    widths = [max(len(c), *(len(r[0][i]) for r in rows)) for i, c in enumerate(cols)]
    print("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row, verdict in rows:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + verdict)
    if scenario.note:
        print(f"\n  note: {scenario.note}")
    when = "; resolved: seconds after the fault was cleared" if resolve else ""
    print(f"\n  drill {scenario.name}: {'PASS' if ok else 'FAIL'} (times are seconds after the fault{when})")
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS))
    p.add_argument("--reset", action="store_true", help="clear every fault, start stopped services")
    p.add_argument("--list", action="store_true", help="list scenarios and the alerts they fire")
    p.add_argument("--timeout", type=float, default=float(os.environ.get("DRILL_TIMEOUT", 150)),
                   help="seconds to wait for the alerts (default 150, env DRILL_TIMEOUT)")
    p.add_argument("--resolve", action="store_true", help="clear the fault and time the resolution")
    args = p.parse_args(argv)
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:18} {s.what}\n{'':18} expects: {', '.join(map(str, s.expect))}")
        return 0
    target = Target()
    if args.reset:
        problems = target.reset()
        for problem in problems:
            print(problem, file=sys.stderr)
        print("faults cleared, stopped services started" if not problems else "reset incomplete")
        return 1 if problems else 0
    if not args.scenario:
        p.error("name a scenario (or --reset / --list)")
    try:
        return run(target, SCENARIOS[args.scenario], args.timeout, args.resolve)
    except (urllib.error.URLError, ConnectionError, RuntimeError) as e:
        print(f"drill {args.scenario}: cannot reach the stack: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
