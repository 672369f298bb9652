"""docker-compose.auth.yml as compose reads it over the stack (every optional part on):
no port stays published without TLS and a login, each protected by the component's own
mechanism; the protected services read scripts/auth.py's folder, read-only (the generated
auth variants are checked fresh with the other profiles: test_drill_profile.py). The
services behind it run in tests/auth (the auth tier)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from scripts import compose_info
from scripts.init_env import SECRETS
from tests.tooling import REPO

MOUNT = "/run/stack-auth"
# Every secret set to a value of its own: none may show anywhere compose would run it with.
SENTINELS = {name: f"sentinel-{name.lower()}-5c1f" for name in SECRETS}


@pytest.fixture(scope="module")
def shared() -> dict:
    files = compose_info.compose_files(REPO, user={"STACK_AUTH": "on"}, extras=False)
    assert files[-1] == compose_info.AUTH_FILE, files
    p = subprocess.run(["docker", "compose", *[a for f in files for a in ("-f", f)], "--profile", "*", "config",
                        "--format", "json"], cwd=REPO, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SECRETS_DIR": "/tmp/stack-secrets", **SENTINELS})
    if p.returncode != 0 and "docker" in p.stderr and "not found" in p.stderr:
        pytest.skip("docker compose is not here")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["services"]


def _env(svc: dict) -> dict:
    return svc.get("environment") or {}


def _mounts_auth(svc: dict) -> bool:
    return any(v.get("target") == MOUNT and v.get("read_only") and v.get("source") == "/tmp/stack-secrets/auth"
               for v in svc.get("volumes") or [])


# How each service that publishes a port protects it, as compose will run it.
PROTECTED_BY = {
    "prometheus": lambda s: _env(s).get("PROMETHEUS_WEB_CONFIG_FILE") == f"{MOUNT}/web.yml",
    "alertmanager": lambda s: _env(s).get("ALERTMANAGER_WEB_CONFIG_FILE") == f"{MOUNT}/web.yml",
    "grafana": lambda s: _env(s).get("GF_SERVER_PROTOCOL") == "https",
    "jaeger": lambda s: "--config=/etc/jaeger/auth.yml" in s["command"],
    "otel-edge": lambda s: s["command"] == ["--config=/etc/otelcol/edge.yml"],
    # the demo's published listener (demo_app/published.py) is the one published
    "shop": lambda s: {p["target"] for p in s["ports"]} == {int(_env(s)["DEMO_PUBLISHED_PORT"])},
    "inventory": lambda s: {p["target"] for p in s["ports"]} == {int(_env(s)["DEMO_PUBLISHED_PORT"])},
    "alert-sink": lambda s: {p["target"] for p in s["ports"]} == {int(_env(s)["DEMO_PUBLISHED_PORT"])},
}


def test_no_port_stays_published_without_tls_and_a_login(shared: dict) -> None:
    published = {name for name, svc in shared.items() if svc.get("ports")}
    unprotected = sorted(published - set(PROTECTED_BY))
    assert not unprotected, f"published with STACK_AUTH on, and nothing protects them: {unprotected}"
    wrong = sorted(name for name in published if not PROTECTED_BY[name](shared[name]))
    assert not wrong, f"published, but not behind their protection: {wrong}"
    assert not shared["otel-collector"].get("ports"), "the plain OTLP receivers are still published"
    # The edge takes the collector's ports and is the same image (one pin).
    assert {p["target"] for p in shared["otel-edge"]["ports"]} == {4317, 4318}
    assert shared["otel-edge"]["image"] == shared["otel-collector"]["image"]


# Not published, but a client of a protected service: the collector logs in to Prometheus.
CLIENTS = {"otel-collector"}


def test_the_protected_services_read_the_auth_folder_read_only(shared: dict) -> None:
    readers = {name for name, svc in shared.items() if _mounts_auth(svc)}
    assert readers == set(PROTECTED_BY) | CLIENTS, sorted(readers ^ (set(PROTECTED_BY) | CLIENTS))
    config = {v["target"]: v["source"] for v in shared["otel-collector"]["volumes"]}["/etc/otelcol/config.yml"]
    assert config.endswith("otel-collector/config.auth.yml"), config


def test_no_secret_reaches_an_environment_a_command_or_a_healthcheck(shared: dict) -> None:
    text = json.dumps(shared)
    shown = sorted(name for name, value in SENTINELS.items() if value in text)
    assert not shown, f"compose would hand these secrets' values to a container in the open: {shown}"

