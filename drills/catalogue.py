"""The one catalogue of incidents: the live faults (what each breaks, how, and the alerts
it must fire), the incidents `make history` plants in a month (and the alerts each must
page), and, for every shipped alert no planted incident pages, why none exists.

Read by the drills (`make drill`), the fault scheduler (`make chaos`), the history
(`make history`), the scorecard (`make scorecard`), the backtest (`make backtest`), the
graded exercises, the soak, and the table in docs/conventions.md (a test keeps that table
equal to this one). A new fault, incident or alert is added here, once.

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
        "exceptions", "a fifth of shop's requests hit a bug: an unexpected exception, logged with its "
                      "traceback, answered 500 (fault switch exception_ratio=0.2)",
        faults={"shop": {"exception_ratio": 0.2}},
        expect=(Expect("DemoErrorBudgetBurnFast", {"service": "shop"}),),
        note="Prometheus sees the 500s; the tracebacks reach Loki as OTLP records with exception.* "
             "attributes (structured metadata), for a LogQL rule (exercise 12).",
        detect_s=30,
    ),
    Fault(
        "jaeger-down", "Jaeger stops (docker compose stop jaeger): the collector's traces queue grows",
        stop=("jaeger",),
        expect=(Expect("TargetDown", {"service": "jaeger"}),),
        note="The otlp_grpc/jaeger exporter queues the spans it cannot send (~0.5 MB a minute at the "
             "demo's load); once the queue is full (OTELCOL_QUEUE_MAX_BYTES: ~33 min in the drill "
             "profile, hours by default) the receiver refuses spans and OtelCollectorRefusingData, "
             "OtelCollectorDroppingData follow (exercises 05 and 11).",
        detect_s=45,
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


@dataclass(frozen=True)
class Planted:
    """An incident `make history` plants in its month. The history's generator
    (drills/history.py) knows by name how each changes the series."""
    name: str
    what: str
    start_h: float        # hours before the history's end
    hours: float
    service: str = "shop"
    fault: str = ""       # the live fault it stands for: the alerts it must page are that fault's
    expect: tuple = ()    # or, with no such fault, its own

    @property
    def alerts(self) -> tuple:
        return self.expect or (FAULTS[self.fault].expect if self.fault else ())


PLANTED = {p.name: p for p in (
    Planted("fast-burn", "shop answers 6 % of requests with a 500 for 40 minutes", 20 * 24, 40 / 60,
            fault="errors"),
    Planted("latency-regression", "shop's p95 latency rises above 1 s for 90 minutes", 15 * 24, 1.5,
            fault="latency"),
    Planted("traffic-dip", "the load generator stops for 20 minutes: no traffic", 12 * 24, 20 / 60,
            service="loadgen", fault="loadgen-stopped"),
    Planted("slow-burn", "shop answers 0.45 % of requests with a 500 for two days", 10 * 24, 48,
            fault="slow-burn"),
    Planted("scrape-gap", "Prometheus itself was down for 30 minutes: no sample of anything", 7 * 24, 0.5),
    Planted("flapping-errors", "inventory fails 4 % of requests in 10-minute bursts every 30 minutes, for 4 hours",
            5 * 24, 4, service="inventory",
            expect=(Expect("DemoErrorBudgetBurnFast", {"service": "inventory"}),)),
)}
# `make history ENDING=burning`: the history's last day burns slowly, so the slow burn-rate
# alert fires on the live edge (the drill `slow-burn` adds a mild live error rate on top).
BURNING_END = Planted("burning-end", "shop answers 0.45 % of requests with a 500 over the last 26 hours", 26, 26,
                      fault="slow-burn")

# Alerts that are not pages: the backtest and the scorecard leave them out.
NOT_PAGES = {"Watchdog": "always firing by design: it proves the alerting pipeline works"}

# The backend each signal is stored in (the `signal` label of the stack's alerts): a stack run
# without one (its image missing) rightly pages that signal's pipeline as failing.
SIGNAL_BACKENDS = {"logs": "loki", "spans": "jaeger", "traces": "jaeger", "metrics": "prometheus"}

_STACK_ONLY = ("the history holds the demo's series and their `up` only: the stack's own components' "
               "metrics are not backfilled (the stack's tests and drills exercise it live)")
# Every shipped alert (prometheus/rules/*.yml) no planted incident pages, and why (a test
# keeps this list and the rules equal). An alert of neither list fails that test.
NO_PLANTED_INCIDENT = {
    **NOT_PAGES,
    "DemoServiceDown": "the history plants no crash of shop or inventory (their `up` stays 1; a crash "
                       "would also burn shop's budget, which fast-burn already covers)",
    "DemoReadinessFailing": "the history does not write demo_readiness; the drill inventory-outage pages it live",
    "DemoTelemetryExportFailing": "the history does not write the demo's OTLP export counters; the drill "
                                  "collector-down pages it live",
    **{name: ("the history holds the demo's series only, not the host profile's (node_exporter); the own tier "
                    "checks them quiet on the live host and promtool tests make them fire")
       for name in ("HostFilesystemWillFill", "HostMemoryPressure")},
    **{name: ("the copy to your own backend is off in the history's stack; the forward tier makes it fire "
                    "against a real backend it stops")
       for name in ("OtelCollectorForwardDropping", "PrometheusRemoteWriteBehind")},
    **{name: _STACK_ONLY for name in (
        "GrafanaDown", "PrometheusRuleEvaluationFailures", "PrometheusNotificationErrors",
        "PrometheusNotConnectedToAlertmanager", "PrometheusTooManySeries", "PrometheusConfigReloadFailed",
        "AlertmanagerNotificationsFailing", "AlertmanagerConfigReloadFailed", "OtelCollectorRefusingData",
        "OtelCollectorExporterFailing", "OtelCollectorDroppingData", "OtelCollectorForwardStalled",
        "OtelCollectorSpanMetricsOverflow", "LokiRequestErrors", "JaegerDroppingSpans")},
}
