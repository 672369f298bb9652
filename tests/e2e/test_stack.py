"""The stack itself: what could start is up and healthy, and it listens on loopback only."""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import requests

from scripts import compose_info
from scripts.compose_plan import merged_services
from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until
from tests.tooling import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.signal("stack")]


def test_started_services_are_running_and_healthy(stack: st.Stack) -> None:
    containers = stack.containers()
    bad = {}
    for svc in stack.plan.start:
        row = containers.get(svc, {})
        state, health = row.get("State", "absent"), row.get("Health", "")
        if svc in stack.plan.one_shot:  # did its job and exited cleanly
            if (state, row.get("ExitCode")) != ("exited", 0):
                bad[svc] = (state, f"exit code {row.get('ExitCode')}")
        # Health is "" for a service without a healthcheck: running is all compose can say.
        elif state != "running" or health not in ("", "healthy"):
            bad[svc] = (state, health)
    assert not bad, f"not running/healthy after `up --wait`: {bad}\n{stack.logs(*bad)}"


def test_published_ports_are_loopback_only(stack: st.Stack) -> None:
    published = {
        (svc, p.get("URL"), p.get("TargetPort"), p.get("PublishedPort"))
        for svc, row in stack.containers().items()
        for p in row.get("Publishers") or [] if p.get("PublishedPort")
    }
    exposed = sorted(x for x in published if x[1] not in (clients.HOST, "::1"))
    assert not exposed, f"ports published beyond {clients.HOST} (service, address, target, published): {exposed}"
    # Every port the compose files publish is reachable, on the port Docker picked.
    services = merged_services(tuple(stack.files))
    for svc in stack.plan.start:
        want = {int(str(spec).rsplit(":", 1)[1]) for spec in services[svc].get("ports") or []}
        got = {target for s, _, target, _ in published if s == svc}
        assert want <= got, f"{svc} publishes {sorted(got)}, the compose files say {sorted(want)}"


@pytest.mark.services("shop", "inventory")
def test_demo_health_and_readiness(stack: st.Stack) -> None:
    for svc in ("shop", "inventory"):
        assert requests.get(clients.url(svc, "/healthz"), timeout=5).status_code == 200

        def ready(svc: str = svc) -> dict | None:
            r = requests.get(clients.url(svc, "/readyz"), timeout=5)
            return r.json() if r.status_code == 200 else None

        body = poll_until(ready, 60, f"{svc} /readyz answers 200")
        assert all(c.get("status") == "ok" for c in body["checks"].values()), body


@pytest.mark.services("shop")
def test_fault_switch_needs_the_generated_token(stack: st.Stack) -> None:
    # The admin API is reachable on loopback only through the token the suite generated.
    assert requests.get(clients.url("shop", "/admin/faults"), timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(clients.url("shop", "/admin/faults"), headers=wrong, timeout=5).status_code == 401
    r = requests.get(clients.url("shop", "/admin/faults"), headers=stack.admin_headers, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["error_ratio"] == 0, f"a fault is set at start: {r.json()}"


@pytest.mark.services("otel-collector", "prometheus")
def test_collector_health_check_answers_inside_the_network(stack: st.Stack) -> None:
    # compose's healthcheck (promtool from the collector-probe volume) says healthy, and the
    # health_check extension answers a neighbour too (13133 is not published).
    assert stack.containers()["otel-collector"].get("Health") == "healthy", stack.containers()["otel-collector"]

    def healthy() -> str:
        out = stack.compose("exec", "-T", "prometheus", "wget", "-q", "-O", "-",
                            "http://otel-collector:13133/-/healthy", timeout=30).stdout
        assert "available" in out.lower(), out
        return out

    poll_until(healthy, 60, "the collector's health_check extension (otel-collector:13133) answers", interval=3)


def _metric(text: str, name: str) -> float:
    return max((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")),
               default=0.0)


@pytest.mark.services("prometheus", "alertmanager")
def test_make_reload_reloads_by_signal(stack: st.Stack) -> None:
    """`make reload` sends SIGHUP (the lifecycle API is off): both re-read their config."""
    def reload_times() -> tuple[float, float]:
        prom = clients.get_json("prometheus", "/api/v1/status/runtimeinfo")["data"]["lastConfigTime"]
        am = requests.get(clients.url("alertmanager", "/metrics"), timeout=10).text
        return prom, _metric(am, "alertmanager_config_last_reload_success_timestamp_seconds")

    before = reload_times()
    assert requests.post(clients.url("prometheus", "/-/reload"), timeout=10).status_code in (403, 404, 405), (
        "Prometheus' lifecycle API answers: a web page could reload or stop it")
    time.sleep(1.1)  # reload timestamps have a one-second resolution
    p = subprocess.run(["make", "--no-print-directory", "reload", f"COMPOSE={' '.join(stack.compose_cmd)}"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    # The stack shared (the auth tier), `make reload` restarts the services that read their
    # certificate and login only as they start: they come back healthy, on new host ports.
    poll_until(lambda: not compose_info.not_ready(rows := compose_info.ps(stack.compose_cmd),
                                                  compose_info.inspect(rows)), 120, "every service is ready again")
    stack.refresh_endpoints()
    poll_until(lambda: all(a != b for a, b in zip(reload_times(), before)), 30,
                  f"Prometheus and Alertmanager reloaded (before: {before})")


def test_make_urls_lists_every_published_endpoint(stack: st.Stack) -> None:
    env = {**os.environ, "COMPOSE_PROJECT_NAME": stack.project}
    out = subprocess.run(["make", "--no-print-directory", "urls"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    urls = re.findall(rf"{clients.LOGIN.scheme}://localhost:(\d+)", out)
    published = {port for ports in clients.ENDPOINTS.values() for port in ports.values()}
    assert published and published >= {int(p) for p in urls}, out
    for service, ports in clients.ENDPOINTS.items():
        assert any(str(p) in out for p in ports.values()), f"`make urls` does not list {service}:\n{out}"


# Every path of a published port that acts (stops, reloads, deletes, ingests, changes a
# fault or a notification) when asked the right way. A web page in the user's browser can
# send a GET to any of them (an <img>), so none may act on a GET: each must refuse it, and
# nothing may have changed afterwards. A service that publishes a port must be listed here.
# Loki is not published at all: it stops on a GET of /ingester/shutdown.
ACTING_PATHS = {
    "prometheus": ["/-/quit", "/-/reload", "/api/v1/admin/tsdb/snapshot",
                   "/api/v1/admin/tsdb/delete_series?match[]=up", "/api/v1/admin/tsdb/clean_tombstones"],
    "alertmanager": ["/-/reload", "/api/v2/silence/00000000-0000-0000-0000-000000000000"],
    "grafana": ["/api/admin/provisioning/dashboards/reload", "/api/snapshots", "/api/admin/users"],
    "jaeger": [],  # the query API only reads
    "otel-collector": ["/v1/traces", "/v1/metrics", "/v1/logs"],
    "otel-edge": ["/v1/traces", "/v1/metrics", "/v1/logs"],   # OTLP in, the stack shared
    "shop": ["/admin/faults", "/api/checkout"],
    "inventory": ["/admin/faults", "/api/items/1/reserve"],
    "alert-sink": ["/webhook", "/slack/critical"],
}
# The port of a service that publishes several.
HTTP_PORT = {"otel-collector": 4318, "otel-edge": 4318}


def _state(stack: st.Stack) -> dict:
    """What a GET that acted would change: containers (restarted or stopped), reloads,
    the fault switches, the alert sink's store."""
    s = {"containers": {svc: row.get("State") for svc, row in stack.containers().items()
                        if svc not in stack.plan.one_shot}}
    running = stack.running()
    ids = {svc: row["ID"] for svc, row in stack.containers().items() if svc in running}
    s["started"] = {svc: subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", cid],
                                        capture_output=True, text=True).stdout.strip() for svc, cid in ids.items()}
    if "prometheus" in running:
        s["prometheus_config"] = clients.get_json("prometheus", "/api/v1/status/runtimeinfo")["data"]["lastConfigTime"]
    if "alertmanager" in running:
        s["alertmanager_config"] = _metric(requests.get(clients.url("alertmanager", "/metrics"), timeout=10).text,
                                           "alertmanager_config_last_reload_success_timestamp_seconds")
    for svc in ("shop", "inventory"):
        if svc in running:
            s[f"{svc}_faults"] = requests.get(clients.url(svc, "/admin/faults"), headers=stack.admin_headers, timeout=10).json()
    if "alert-sink" in running:
        s["sink_stored"] = clients.get_json("alert-sink", "/api/notifications", params={"limit": 1})["stored_notifications"]
    return s


def test_no_get_on_a_published_port_changes_anything(stack: st.Stack) -> None:
    unlisted = set(clients.ENDPOINTS) - set(ACTING_PATHS)
    assert not unlisted, f"published services without a list of their acting paths: {sorted(unlisted)}"
    assert "loki" not in clients.ENDPOINTS, "Loki is published: any web page could GET /ingester/shutdown"
    before = _state(stack)
    acted = []
    for svc, paths in ACTING_PATHS.items():
        if svc not in clients.ENDPOINTS:
            continue  # not running here (its image is missing)
        for path in paths:
            r = requests.get(clients.url(svc, path, port=HTTP_PORT.get(svc)), timeout=10, allow_redirects=False)
            if r.ok:
                acted.append((svc, path, r.status_code))
    time.sleep(2)  # a quit or a reload would have happened by now
    after = _state(stack)
    assert not acted, f"GET answered 2xx on an acting path (service, path, status): {acted}"
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert not changed, f"a GET changed the stack: {changed}"
