"""Readiness tells the truth: `make up` waits until the collector's pipelines run (its
healthcheck), and a collector that cannot start makes `make up` fail within a bounded
time, naming the service and printing its last log lines. Proven with a config that the
real validator accepts but the collector cannot start: two receivers on one port.

Runs in a compose project of its own (only volume-init and the collector, no published
port), so it never meets the e2e stack or the user's."""
from __future__ import annotations

import secrets
import subprocess
import time

import pytest
import yaml

from tests.tooling import REPO, require_image, run_tool

pytestmark = [pytest.mark.e2e, pytest.mark.signal("stack")]
PROJECT = "obs-readiness"
UP_TIMEOUT_S = 120


def broken_config(folder) -> None:
    """The stack's collector config plus a second OTLP receiver on the first one's port."""
    config = yaml.safe_load((REPO / "otel-collector" / "config.yml").read_text())
    config["receivers"]["otlp/again"] = config["receivers"]["otlp"]
    config["service"]["pipelines"]["traces"]["receivers"].append("otlp/again")
    (folder / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    # The collector's command loads the user's additions last (empty as shipped).
    (folder / "config.extras.yml").write_text((REPO / "otel-collector" / "config.extras.yml").read_text())


def make_up(tmp_path, config_dir) -> tuple[subprocess.CompletedProcess, float]:
    overlay = tmp_path / "overlay.yml"
    overlay.write_text(yaml.safe_dump({"services": {"otel-collector": {
        "ports": [], "volumes": [f"{config_dir}:/etc/otelcol:ro", "otelcol-queue:/var/lib/otelcol",
                                 "collector-probe:/probe:ro"]}}}).replace("ports: []", "ports: !reset []")
                       .replace("volumes:\n", "volumes: !override\n"))
    env_file = tmp_path / "env"
    env_file.write_text(f"GRAFANA_ADMIN_PASSWORD={secrets.token_hex(8)}\nDEMO_ADMIN_TOKEN={secrets.token_hex(8)}\n")
    compose = f"docker compose -p {PROJECT} -f docker-compose.yml -f {overlay} --env-file {env_file}"
    t0 = time.monotonic()
    # -o env: the `env` prerequisite (it writes .env) is not run: this is not the user's stack.
    p = subprocess.run(["make", "--no-print-directory", "-o", "env", "up", f"COMPOSE={compose}",
                        "SERVICES=volume-init otel-collector", f"UP_TIMEOUT={UP_TIMEOUT_S}"],
                       cwd=REPO, capture_output=True, text=True, timeout=UP_TIMEOUT_S + 120)
    return p, time.monotonic() - t0


@pytest.fixture
def project():
    for var in ("OTELCOL_IMAGE", "PROMETHEUS_IMAGE"):
        require_image(var)
    down = ["docker", "compose", "-p", PROJECT, "down", "--volumes", "--remove-orphans"]
    subprocess.run(down, cwd=REPO, capture_output=True, timeout=120)
    yield
    subprocess.run(down, cwd=REPO, capture_output=True, timeout=120)


def test_make_up_fails_loudly_when_the_collector_cannot_start(project, tmp_path) -> None:
    config_dir = tmp_path / "otelcol"
    config_dir.mkdir()
    broken_config(config_dir)
    valid = run_tool("OTELCOL_IMAGE", "/otelcol-contrib", "validate", "--config=/etc/otelcol/config.yml",
                     mounts={config_dir: "/etc/otelcol"})
    assert valid.returncode == 0, f"the broken config should pass validation: {valid.stdout}{valid.stderr}"
    p, took = make_up(tmp_path, config_dir)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"make up succeeded with a collector that cannot start:\n{out[-3000:]}"
    assert "== otel-collector:" in out and "not ready: otel-collector" in out, out[-3000:]
    assert "address already in use" in out, f"the collector's own log lines are not shown:\n{out[-3000:]}"
    assert took < UP_TIMEOUT_S + 60, f"make up took {took:.0f} s to give up"


def test_make_up_waits_for_a_collector_that_runs(project, tmp_path) -> None:
    p, _ = make_up(tmp_path, REPO / "otel-collector")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    health = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", f"{PROJECT}-otel-collector-1"],
                            capture_output=True, text=True).stdout.strip()
    assert health == "healthy", health


def test_make_up_again_while_a_healthcheck_runs_the_probe(project, tmp_path) -> None:
    """A second `make up` runs volume-init again, which puts promtool into the probe volume
    while a healthcheck may be running it (a CI run met "Text file busy" there). A
    container that keeps the probe's promtool running holds that moment open."""
    p, _ = make_up(tmp_path, REPO / "otel-collector")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    busy = subprocess.run(
        ["docker", "run", "-d", "-i", "--rm", "--network", "none", "-v", f"{PROJECT}_collector-probe:/probe:ro",
         "--entrypoint", "/probe/promtool", require_image("PROMETHEUS_IMAGE"), "check", "config", "/dev/stdin"],
        capture_output=True, text=True, timeout=60)
    assert busy.returncode == 0, busy.stderr
    container = busy.stdout.strip()
    try:
        p, _ = make_up(tmp_path, REPO / "otel-collector")
        running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container],
                                 capture_output=True, text=True).stdout.strip()
        assert running == "true", "the probe was not kept running: the test proves nothing"
        assert p.returncode == 0, f"make up failed while the probe ran:\n{(p.stdout + p.stderr)[-3000:]}"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
