"""The stack itself: what could start is up and healthy, and it listens on loopback only."""
from __future__ import annotations

import pytest
import requests

from tests.e2e import stack as st

pytestmark = [pytest.mark.e2e, pytest.mark.signal("stack")]


def test_started_services_are_running_and_healthy(stack: st.Stack) -> None:
    containers = stack.containers()
    bad = {svc: (containers.get(svc, {}).get("State", "absent"), containers.get(svc, {}).get("Health", ""))
           for svc in stack.plan.start}
    # Health is "" for a service without a healthcheck: running is all compose can say.
    bad = {svc: sh for svc, sh in bad.items() if sh[0] != "running" or sh[1] not in ("", "healthy")}
    assert not bad, f"not running/healthy after `up --wait`: {bad}\n{stack.logs(*bad)}"


def test_published_ports_are_loopback_only(stack: st.Stack) -> None:
    published = {
        (svc, p.get("URL"), p.get("TargetPort"), p.get("PublishedPort"))
        for svc, row in stack.containers().items()
        for p in row.get("Publishers") or [] if p.get("PublishedPort")
    }
    exposed = sorted(x for x in published if x[1] != st.HOST)
    assert not exposed, f"ports published beyond {st.HOST} (service, address, target, published): {exposed}"
    # docs/conventions.md: container port = host port, for every UI/API the tests use.
    for svc, port in st.PORTS.items():
        if svc in stack.plan.start:
            assert (svc, st.HOST, port, port) in published, (
                f"{svc} does not publish {port} on {st.HOST}:{port}; it publishes "
                f"{sorted(x for x in published if x[0] == svc)}")


@pytest.mark.services("shop", "inventory")
def test_demo_health_and_readiness(stack: st.Stack) -> None:
    for svc in ("shop", "inventory"):
        assert requests.get(st.url(svc, "/healthz"), timeout=5).status_code == 200

        def ready(svc: str = svc) -> dict | None:
            r = requests.get(st.url(svc, "/readyz"), timeout=5)
            return r.json() if r.status_code == 200 else None

        body = st.poll_until(ready, 60, f"{svc} /readyz answers 200")
        assert all(c.get("status") == "ok" for c in body["checks"].values()), body


@pytest.mark.services("shop")
def test_fault_switch_needs_the_generated_token(stack: st.Stack) -> None:
    # The admin API is reachable on loopback only through the token the suite generated.
    assert requests.get(st.url("shop", "/admin/faults"), timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(st.url("shop", "/admin/faults"), headers=wrong, timeout=5).status_code == 401
    r = requests.get(st.url("shop", "/admin/faults"), headers=stack.admin_headers, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["error_ratio"] == 0, f"a fault is set at start: {r.json()}"


@pytest.mark.services("otel-collector", "prometheus")
def test_collector_health_check_answers_inside_the_network(stack: st.Stack) -> None:
    # The collector image has no shell, hence no compose healthcheck: ask its health_check
    # extension from a neighbour that has busybox wget (13133 is not published).
    def healthy() -> str:
        out = stack.compose("exec", "-T", "prometheus", "wget", "-q", "-O", "-",
                            "http://otel-collector:13133/", timeout=30).stdout
        assert "available" in out.lower(), out
        return out

    st.poll_until(healthy, 60, "the collector's health_check extension (otel-collector:13133) answers", interval=3)
