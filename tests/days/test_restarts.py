"""Days of running: every piece of state a user builds up survives `docker compose restart
SERVICE` and `make down` + `make up` (only `make clean` deletes). State of each kind is
written first, then each service is restarted on its own, then the whole project is taken
down and brought up again; after each, what was written is counted, by id:

| state | written | counted after |
|---|---|---|
| metric samples | Prometheus' own scrapes over a window | the same samples in that window |
| traces | requests with known trace ids | every trace whole in Jaeger |
| silences | a silence created through Alertmanager's API | the silence, active |
| notification log | an alert notified once | posting it again sends nothing new |
| notifications | what the alert sink received | every id still there |
| queued telemetry | traces sent while Jaeger is down (queued on disk) | delivered once Jaeger is back |
| log records | (Loki) request logs with known trace ids | each in Loki |
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until
from tests.e2e.test_logs import loki_streams
from tests.e2e.test_no_loss import stored_traces, traced_requests, wait_all_stored

pytestmark = [pytest.mark.e2e, pytest.mark.signal("restarts")]
ALERT = "RestartMatrixCheck"  # a made-up alert: notified once, then re-posted after restarts
SERVICE_LABEL = "restart-matrix"


def _counted(kind: str, how: str, written: int, found: int, section: str = "restarts") -> None:
    st.MEASUREMENTS.setdefault(section, {})[f"{kind} after {how}"] = f"{found}/{written}"
    assert found == written, f"{kind}: {written} written, {found} found after {how}"


def wait_ready(stack: st.Stack, services: list[str]) -> None:
    def ready() -> bool:
        rows = stack.containers()
        bad = {s: (rows.get(s, {}).get("State"), rows.get(s, {}).get("Health")) for s in services
               if rows.get(s, {}).get("State") != "running" or rows.get(s, {}).get("Health") not in ("", "healthy")}
        assert not bad, bad
        return True

    poll_until(ready, 180, f"{', '.join(services)} running and healthy again", interval=2)
    stack.refresh_endpoints()


def _post_alert(endsAt: datetime) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": {"alertname": ALERT, "severity": "warning", "service": SERVICE_LABEL},
             "annotations": {"summary": "restart matrix"}, "startsAt": now.isoformat(), "endsAt": endsAt.isoformat()}]
    assert requests.post(clients.url("alertmanager", "/api/v2/alerts"), json=body, timeout=10).ok


def _notified() -> int:
    body = clients.get_json("alert-sink", "/api/notifications", params={"channel": "webhook", "limit": 1000})
    return sum(1 for n in body["notifications"] if n["status"] == "firing"
               and any(a["alertname"] == ALERT for a in n["alerts"]))


class State:
    """What was written, and how to count it again (the counts go to MEASUREMENTS[section])."""

    def __init__(self, stack: st.Stack, section: str = "restarts"):
        self.stack = stack
        self.section = section
        # Metric samples: Prometheus' scrapes of itself over the last 5 minutes.
        self.window = (time.time() - 300, time.time() - 15)
        self.samples = self.sample_count()
        assert self.samples > 0
        # Traces.
        self.traces = traced_requests(seconds=2, rate=5)
        wait_all_stored(self.traces, 120, "the restart matrix's traces are whole in Jaeger")
        # A silence.
        now = datetime.now(timezone.utc)
        r = requests.post(clients.url("alertmanager", "/api/v2/silences"), timeout=10, json={
            "matchers": [{"name": "alertname", "value": "RestartMatrixSilenced", "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=2)).isoformat(),
            "createdBy": "tests/e2e/test_restarts.py", "comment": "kept across restarts"})
        assert r.ok, r.text
        self.silence = r.json()["silenceID"]
        # The notification log: one alert, notified once (warnings repeat after 12h).
        _post_alert(now + timedelta(hours=1))
        poll_until(lambda: _notified() == 1, 90, f"{ALERT} is notified once", interval=2)
        # The sink's notifications (the Watchdog's repeats are trimmed by design).
        self.notifications = self.sink_ids()
        # Log records (where Loki runs).
        self.logged = self.traces if "loki" in stack.running() else []

    def sample_count(self) -> int:
        body = clients.get_json("prometheus", "/api/v1/query", params={
            "query": f'count_over_time(up{{job="prometheus"}}[{int(self.window[1] - self.window[0])}s])',
            "time": self.window[1]})
        return int(sum(float(r["value"][1]) for r in body["data"]["result"]))

    def sink_ids(self) -> set[int]:
        body = clients.get_json("alert-sink", "/api/notifications", params={"limit": 1000})
        return {n["id"] for n in body["notifications"] if n["receiver"] != "watchdog"}

    def silence_active(self) -> bool:
        return clients.get_json("alertmanager", f"/api/v2/silence/{self.silence}")["status"]["state"] == "active"

    def check(self, service: str, how: str) -> None:
        def counted(kind: str, written: int, found: int) -> None:
            _counted(kind, how, written, found, self.section)

        if service in ("prometheus", "*"):
            counted("metric samples", self.samples, poll_until(
                lambda: self.sample_count() >= self.samples and self.sample_count(), 60,
                "Prometheus answers from its volume"))
        if service in ("jaeger", "*"):
            counted("traces", len(self.traces), len(stored_traces(self.traces)))
        if service in ("alertmanager", "*"):
            counted("silences", 1, int(self.silence_active()))
            _post_alert(datetime.now(timezone.utc) + timedelta(hours=1))
            time.sleep(15)  # longer than the drill profile's group_wait and group_interval
            counted("notification log (notifications of an alert already notified)", 1, _notified())
        if service in ("alert-sink", "*"):
            counted("notifications", len(self.notifications), len(self.notifications & self.sink_ids()))
        if service in ("loki", "*") and self.logged:
            found = [t for t in self.logged if loki_streams(self.stack, f'{{service_name="shop"}} | trace_id = "{t}"')]
            counted("log records", len(self.logged), len(found))


def queue_for_jaeger(stack: st.Stack) -> list[str]:
    """Traces sent while Jaeger is down: the collector holds them in its queue on disk."""
    stack.compose("stop", "jaeger")
    sent = traced_requests(seconds=2, rate=5)
    time.sleep(12)  # two of the SDK's 5 s export rounds: every span is in the collector
    queued = clients.collector_metric(stack, "otelcol_exporter_queue_size", exporter="otlp_grpc/jaeger")
    assert queued > 0, "nothing queued for the stopped Jaeger"
    return sent


@pytest.fixture(scope="module")
def state(warm: st.Stack) -> State:
    return State(warm)


RESTARTED = ["prometheus", "jaeger", "alertmanager", "alert-sink", "loki"]


@pytest.mark.services("prometheus", "jaeger", "alertmanager", "alert-sink", "otel-collector", "shop", "inventory")
@pytest.mark.parametrize("service", RESTARTED)
def test_state_survives_a_restart_of(service: str, state: State, warm: st.Stack) -> None:
    if service not in warm.plan.start:
        pytest.skip(f"{service} cannot start here: {warm.plan.missing.get(service)}")
    warm.compose("restart", service)
    wait_ready(warm, [service])
    state.check(service, f"docker compose restart {service}")


@pytest.mark.services("jaeger", "otel-collector", "shop", "inventory")
def test_queued_telemetry_survives_a_restart_of_the_collector(warm: st.Stack) -> None:
    sent = queue_for_jaeger(warm)
    try:
        warm.compose("restart", "otel-collector")
        wait_ready(warm, ["otel-collector"])
    finally:
        warm.compose("start", "jaeger")
    _counted("queued traces", "docker compose restart otel-collector", len(sent),
             wait_all_stored(sent, 180, "the traces queued before the collector's restart reach Jaeger"))


@pytest.mark.services("prometheus", "jaeger", "alertmanager", "alert-sink", "otel-collector", "shop", "inventory")
def test_everything_survives_down_and_up(state: State, warm: st.Stack) -> None:
    """`make down` + `make up`: every container removed and created anew on the same
    volumes; the collector goes down holding traces for a stopped Jaeger."""
    queued = queue_for_jaeger(warm)
    warm.compose("down", "--remove-orphans", timeout=300)  # no --volumes: what `make down` does
    warm.compose("up", "-d", "--wait", "--no-deps", *warm.plan.start, timeout=600)
    wait_ready(warm, [s for s in warm.plan.start if s not in warm.plan.one_shot])
    state.check("*", "make down + make up")
    _counted("queued traces", "make down + make up", len(queued),
             wait_all_stored(queued, 180, "the traces queued before `down` reach Jaeger after `up`"))
