"""`make up`'s explanation after a failure (scripts/compose_info.py why): which services are
not ready. Health is judged against the healthcheck a container declares, so a container
caught in the instant after a restart, running with no health status yet, is not ready."""
from __future__ import annotations

from scripts import compose_info

CHECK = {"Healthcheck": {"Test": ["CMD", "/probe/promtool", "check", "healthy"]}}


def row(service: str, state: str = "running", health: str = "", exit_code: int = 0) -> dict:
    return {"ID": service + "-id", "Service": service, "State": state, "Health": health, "ExitCode": exit_code}


def inspected(status: str, config: dict, health: str | None = None, exit_code: int = 0) -> dict:
    state = {"Status": status, "ExitCode": exit_code}
    if health is not None:
        state["Health"] = {"Status": health}
    return {"Id": "full", "State": state, "Config": config}


def names(rows, inspect) -> list[str]:
    return [r["Service"] for r in compose_info.not_ready(rows, inspect)]


def test_a_restarted_container_without_health_yet_is_not_ready() -> None:
    # What `ps` shows in that instant: running, no health, as a service without a healthcheck.
    rows = [row("otel-collector")]
    assert names(rows, {"otel-collector-id": inspected("running", CHECK)}) == ["otel-collector"]
    assert names(rows, {"otel-collector-id": inspected("running", CHECK, "starting")}) == ["otel-collector"]
    assert names(rows, {"otel-collector-id": inspected("running", CHECK, "healthy")}) == []


def test_services_without_healthcheck_and_finished_one_shots_are_ready() -> None:
    rows = [row("remote"), row("volume-init", "exited")]
    inspect = {"remote-id": inspected("running", {}), "volume-init-id": inspected("exited", {})}
    assert names(rows, inspect) == []
    inspect["volume-init-id"] = inspected("exited", {}, exit_code=1)
    assert names(rows, inspect) == ["volume-init"]


def test_restarting_or_gone_containers_are_judged_as_ps_shows_them() -> None:
    assert names([row("otel-collector", "restarting", "unhealthy")],
                 {"otel-collector-id": inspected("restarting", CHECK, "unhealthy")}) == ["otel-collector"]
    assert names([row("shop", health="unhealthy")], {}) == ["shop"]
    assert names([row("shop", health="healthy")], {}) == []
