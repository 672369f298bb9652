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

Only the standard library: it runs with any python3 >= 3.9, no virtualenv needed.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import envfile  # noqa: E402
from compose_info import published  # noqa: E402


@functools.cache
def base_url(service: str) -> str:
    """http://host:port of a service of the running stack, as compose published it
    (DRILL_<SERVICE>_URL overrides, e.g. DRILL_ALERT_SINK_URL)."""
    override = os.environ.get(f"DRILL_{service.upper().replace('-', '_')}_URL")
    if override:
        return override.rstrip("/")
    ports = published().get(service)
    if not ports:
        sys.exit(f"{service} publishes no port: is the stack up? (make drill-up)")
    address, port = next(iter(ports.values()))
    return f"http://{'127.0.0.1' if address in ('0.0.0.0', '') else address}:{port}"


# Services with a fault switch (/admin/faults).
FAULT_SERVICES = ("shop", "inventory")
# Services a drill may stop; --reset starts whichever of them exist and are stopped.
STOPPABLE = ("loadgen", "otel-collector", "loki", "jaeger")


@dataclass(frozen=True)
class Expect:
    alertname: str
    labels: dict = field(default_factory=dict)

    def matches(self, labels: dict) -> bool:
        return labels.get("alertname") == self.alertname and all(
            labels.get(k) == v for k, v in self.labels.items())

    def __str__(self) -> str:
        sel = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.alertname}{{{sel}}}" if sel else self.alertname


@dataclass
class Scenario:
    name: str
    what: str
    faults: dict = field(default_factory=dict)       # service -> fault-switch body
    stop: tuple = ()                                  # compose services to stop
    expect: tuple = ()                                # alerts that must reach the sink
    note: str = ""


SCENARIOS = {s.name: s for s in (
    Scenario(
        "errors", "every shop request answers 500 (fault switch error_ratio=1.0)",
        faults={"shop": {"error_ratio": 1.0}},
        expect=(Expect("DemoErrorBudgetBurnFast", {"service": "shop"}),),
        note="1h error ratio passes 1.44 % after ~1 min of errors (sooner on a young Prometheus).",
    ),
    Scenario(
        "latency", "every shop request takes 1.5 s longer (fault switch latency_ms=1500)",
        faults={"shop": {"latency_ms": 1500}},
        expect=(Expect("DemoHighLatencyP95", {"service": "shop"}),),
        note="p95 over 5m passes 500 ms once 5 % of the window is slow (~15 s), then for: 30s.",
    ),
    Scenario(
        "inventory-outage", "inventory's store becomes unavailable (fault switch outage=true)",
        faults={"inventory": {"outage": True}},
        expect=(Expect("DemoErrorBudgetBurnFast", {"service": "inventory"}),
                Expect("DemoReadinessFailing", {"service": "inventory"})),
        note="DemoReadinessFailing (warning) is usually inhibited by the critical burn-rate "
             "alert on the same service: it fires in Prometheus, Alertmanager holds it back.",
    ),
    Scenario(
        "loadgen-stopped", "the load generator stops (docker compose stop loadgen)",
        stop=("loadgen",),
        expect=(Expect("TargetDown", {"service": "loadgen"}),
                Expect("DemoNoTraffic", {"service": "shop"}),
                Expect("DemoNoTraffic", {"service": "inventory"})),
        note="DemoNoTraffic needs a full minute without requests.",
    ),
    Scenario(
        "collector-down", "the OpenTelemetry Collector stops (docker compose stop otel-collector)",
        stop=("otel-collector",),
        expect=(Expect("TargetDown", {"service": "otel-collector"}),
                Expect("DemoTelemetryExportFailing", {"service": "shop"})),
        note="The demo keeps serving; its OTLP exports fail and are counted.",
    ),
    Scenario(
        "loki-down", "Loki stops (docker compose stop loki)",
        stop=("loki",),
        expect=(Expect("TargetDown", {"service": "loki"}),),
        note="OtelCollectorExporterFailing{exporter=~\".*loki.*\"} follows once the collector's "
             "retries for a batch run out (minutes): watch for it with a longer --timeout.",
    ),
)}


# ------------------------------------------------------------------------------ helpers
def http(method: str, url: str, body: dict | None = None, token: str | None = None,
         timeout: float = 5) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def get_json(url: str) -> object:
    status, payload = http("GET", url)
    if status != 200:
        raise RuntimeError(f"GET {url} -> HTTP {status}: {payload}")
    return payload


def admin_token() -> str:
    return os.environ.get("DEMO_ADMIN_TOKEN", "").strip() or envfile.read(REPO / ".env").get("DEMO_ADMIN_TOKEN", "")


def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", "compose", *args], cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker compose {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def set_fault(service: str, body: dict | None, token: str) -> None:
    url = base_url(service) + "/admin/faults"
    status, payload = http("DELETE" if body is None else "POST", url, body, token)
    if status >= 300:
        raise RuntimeError(f"{'DELETE' if body is None else 'POST'} {url} -> HTTP {status}: {payload}")


def prometheus_alerts() -> list[dict]:
    return get_json(base_url("prometheus") + "/api/v1/alerts")["data"]["alerts"]


def alertmanager_alerts() -> list[dict]:
    return get_json(base_url("alertmanager") + "/api/v2/alerts")


def sink_alerts(alertname: str, status: str) -> list[dict]:
    q = urllib.parse.urlencode({"alertname": alertname, "status": status})
    return get_json(f"{base_url('alert-sink')}/api/alerts?{q}")["alerts"]


def evaluation_interval() -> str | None:
    """The running Prometheus' global evaluation_interval, to warn about a slow profile."""
    try:
        text = get_json(base_url("prometheus") + "/api/v1/status/config")["data"]["yaml"]
    except Exception:
        return None
    for line in text.splitlines():
        if line.strip().startswith("evaluation_interval:"):
            return line.split(":", 1)[1].strip()
    return None


# ------------------------------------------------------------------------------ the drill
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


def wait_for(timelines: list[Timeline], t0: float, wall0: float, timeout: float) -> None:
    """Poll until every timeline is done or the timeout passes."""
    while True:
        now = time.monotonic() - t0
        try:
            prom = prometheus_alerts()
            am = alertmanager_alerts()
        except Exception as e:  # a stack fault may take a component away: keep polling
            print(f"  ({now:4.0f}s) poll failed: {e}", flush=True)
            prom, am = [], []
        for tl in timelines:
            for a in prom:
                if tl.expect.matches(a["labels"]):
                    if tl.pending is None:
                        tl.pending = now
                    if a["state"] == "firing" and tl.firing is None:
                        tl.firing = now
            by_fp = {a.get("fingerprint"): a["labels"] for a in am}
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
                    got = sink_alerts(tl.expect.alertname, "firing")
                except Exception:
                    got = []
                for a in got:
                    if not tl.expect.matches(a["labels"]):
                        continue
                    # Only notifications received after the fault count.
                    if _received_after(a, wall0):
                        tl.at_sink = now
        if all(tl.done() for tl in timelines) or now > timeout:
            return
        time.sleep(2)


def _received_after(alert: dict, wall0: float) -> bool:
    from datetime import datetime
    try:
        ts = datetime.fromisoformat(alert["received_at"].replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return True
    return ts >= wall0 - 1


def wait_resolved(timelines: list[Timeline], t0: float, wall0: float, timeout: float) -> None:
    while True:
        now = time.monotonic() - t0
        for tl in timelines:
            if tl.resolved_at_sink is None and tl.at_sink is not None:
                try:
                    got = sink_alerts(tl.expect.alertname, "resolved")
                except Exception:
                    got = []
                if any(tl.expect.matches(a["labels"]) and _received_after(a, wall0) for a in got):
                    tl.resolved_at_sink = now
        if all(tl.resolved_at_sink is not None for tl in timelines if tl.at_sink is not None) \
                or now > timeout:
            return
        time.sleep(2)


def run(scenario: Scenario, timeout: float, resolve: bool) -> int:
    print(f"drill {scenario.name}: {scenario.what}")
    ev = evaluation_interval()
    if ev and ev not in ("1s", "2s", "5s"):
        print(f"  note: Prometheus evaluates every {ev}; start the stack with the drill profile "
              "(PROMETHEUS_CONFIG_FILE=prometheus.drill.yml ALERTMANAGER_CONFIG_FILE="
              "alertmanager.drill.yml) for minute-scale drills.")
    token = admin_token()
    if scenario.faults and not token:
        print("  DEMO_ADMIN_TOKEN is neither in the environment nor in .env", file=sys.stderr)
        return 2

    timelines = [Timeline(e) for e in scenario.expect]
    already = prometheus_alerts()
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
    for service, body in scenario.faults.items():
        set_fault(service, body, token)
        print(f"  fault set on {service}: {json.dumps(body)}")
    for service in scenario.stop:
        compose("stop", service)
        print(f"  stopped {service}")
    print(f"  waiting up to {timeout:.0f}s for: {', '.join(str(e) for e in scenario.expect)}", flush=True)
    wait_for(timelines, t0, wall0, timeout)

    if resolve:
        print("  clearing the fault and waiting for resolved notifications ...", flush=True)
        reset(quiet=True)
        r_wall0, r_t0 = time.time(), time.monotonic()
        wait_resolved(timelines, r_t0, r_wall0, timeout)

    ok = report(scenario, timelines, resolve)
    watchdog = sink_alerts("Watchdog", "firing")
    print(f"  Watchdog at the sink: {'yes' if watchdog else 'NO -- the alerting path is broken'}")
    if not resolve:
        print("  the fault is still on: look around, then `make drill-reset`.")
    return 0 if ok and watchdog else 1


def report(scenario: Scenario, timelines: list[Timeline], resolve: bool) -> bool:
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


def reset(quiet: bool = False) -> int:
    token = admin_token()
    failed = 0
    for service in FAULT_SERVICES:
        try:
            set_fault(service, None, token)
            quiet or print(f"cleared faults on {service}")
        except Exception as e:
            failed += 1
            print(f"could not clear faults on {service}: {e}", file=sys.stderr)
    proc = compose("ps", "--all", "--format", "{{.Service}} {{.State}}", check=False)
    states = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    stopped = [s for s in STOPPABLE if s in states and states[s] != "running"]
    if stopped:
        compose("start", *stopped)
        quiet or print(f"started {', '.join(stopped)}")
    return 1 if failed else 0


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
    if args.reset:
        return reset()
    if not args.scenario:
        p.error("name a scenario (or --reset / --list)")
    try:
        return run(SCENARIOS[args.scenario], args.timeout, args.resolve)
    except (urllib.error.URLError, ConnectionError, RuntimeError) as e:
        print(f"drill {args.scenario}: cannot reach the stack: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
