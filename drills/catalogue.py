"""The one catalogue of faults: what each breaks, how, and the alerts it must fire.

Read by the drills (`make drill`), the fault scheduler (`make chaos`), the scorecard
(`make scorecard`), the graded exercises' live stage, the soak, and the table in
docs/conventions.md (a test keeps that table equal to this one).

A fault is applied through the demo's fault switch (`faults`: service -> body of POST
/admin/faults) and/or by stopping compose services (`stop`); clearing it is the switch's
DELETE and `docker compose start`.

Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expect:
    """An alert a fault must fire: its name and the labels that pick the instance."""
    alertname: str
    labels: dict = field(default_factory=dict)

    def matches(self, labels: dict) -> bool:
        return labels.get("alertname") == self.alertname and all(
            labels.get(k) == v for k, v in self.labels.items())

    def __str__(self) -> str:
        sel = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.alertname}{{{sel}}}" if sel else self.alertname


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    faults: dict = field(default_factory=dict)   # service -> fault-switch body
    stop: tuple = ()                              # compose services to stop
    expect: tuple = ()                            # alerts that must reach the alert sink
    # Expected alerts Alertmanager may hold back (inhibited by a critical one on the same
    # service): they count as seen when inhibited.
    may_be_inhibited: tuple = ()
    note: str = ""
    # The services the fault needs running (a stop of a missing service proves nothing).
    needs: tuple = ()
    # The history (`make history ENDING=...`) the fault needs underneath, if any.
    history: str = ""
    # Seconds the expected alerts need to reach the sink in the drill profile: the fault
    # scheduler holds a fault at least this long, the scorecard waits this long for them.
    detect_s: int = 40

    @property
    def services(self) -> tuple:
        return tuple(self.faults) + self.stop + self.needs


FAULTS = {f.name: f for f in (
    Fault(
        "errors", "every shop request answers 500 (fault switch error_ratio=1.0)",
        faults={"shop": {"error_ratio": 1.0}},
        expect=(Expect("DemoErrorBudgetBurnFast", {"service": "shop"}),),
        note="The 1h and 5m error ratios pass 1.44 % within seconds of the first errors.",
        detect_s=25,
    ),
    Fault(
        "slow-burn", "shop fails 0.5 % of requests (fault switch error_ratio=0.005) on top of a "
                     "history whose last day burned slowly (make history ENDING=burning)",
        faults={"shop": {"error_ratio": 0.005}},
        expect=(Expect("DemoErrorBudgetBurnSlow", {"service": "shop"}),),
        note="Its 1d and 2h windows need days of data: on a fresh stack it takes a day. On a history "
             "loaded by `make history ENDING=burning` the alert fires from the history alone (the "
             "history tier checks that page); this drill is for a stack that has run calmly for days.",
        history="burning",
        detect_s=40,
    ),
    Fault(
        "latency", "every shop request takes 1.5 s longer (fault switch latency_ms=1500)",
        faults={"shop": {"latency_ms": 1500}},
        expect=(Expect("DemoHighLatencyP95", {"service": "shop"}),),
        note="p95 over 1m passes 500 ms once 5 % of the minute is slow (~3 s), then for: 10s.",
        detect_s=35,
    ),
    Fault(
        "inventory-outage", "inventory's store becomes unavailable (fault switch outage=true)",
        faults={"inventory": {"outage": True}},
        expect=(Expect("DemoErrorBudgetBurnFast", {"service": "inventory"}),
                Expect("DemoReadinessFailing", {"service": "inventory"})),
        may_be_inhibited=(Expect("DemoReadinessFailing", {"service": "inventory"}),),
        note="DemoReadinessFailing (warning) is usually inhibited by the critical burn-rate "
             "alert on the same service: it fires in Prometheus, Alertmanager holds it back.",
        detect_s=45,
    ),
    Fault(
        "loadgen-stopped", "the load generator stops (docker compose stop loadgen)",
        stop=("loadgen",),
        expect=(Expect("TargetDown", {"service": "loadgen"}),
                Expect("DemoNoTraffic", {"service": "shop"}),
                Expect("DemoNoTraffic", {"service": "inventory"})),
        note="DemoNoTraffic needs a full minute without requests.",
        detect_s=95,
    ),
    Fault(
        "collector-down", "the OpenTelemetry Collector stops (docker compose stop otel-collector)",
        stop=("otel-collector",),
        expect=(Expect("TargetDown", {"service": "otel-collector"}),
                Expect("DemoTelemetryExportFailing", {"service": "shop"})),
        note="The demo keeps serving; its OTLP exports fail and are counted.",
        detect_s=75,
    ),
    Fault(
        "loki-down", "Loki stops (docker compose stop loki)",
        stop=("loki",),
        expect=(Expect("TargetDown", {"service": "loki"}),),
        note="OtelCollectorExporterFailing{exporter=~\".*loki.*\"} follows once the collector's "
             "retries for a batch run out (minutes): watch for it with a longer --timeout.",
        detect_s=45,
    ),
)}
