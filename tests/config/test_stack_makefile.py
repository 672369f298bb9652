"""The Makefile's targets and the first-run .env creation (`make up` -> scripts/init_env.py)."""
from __future__ import annotations

import re
import shutil
import stat
import subprocess

import pytest

from tests.tooling import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")

TARGETS = ["up", "down", "restart", "ps", "logs", "urls", "validate", "test", "reload", "clean",
           "twins", "bench", "dashboards", "drill", "drill-reset"]


def make(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args],
                          capture_output=True, text=True, timeout=60, **kw)


def test_help_is_the_default_and_lists_every_target():
    p = make()
    assert p.returncode == 0, p.stderr
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", p.stdout, re.MULTILINE))
    for t in TARGETS:
        assert t in listed and listed[t].strip(), f"`make help` has no help line for {t}"


@pytest.mark.parametrize("target,expected", [
    ("up", "docker compose up -d --wait"),
    ("down", "docker compose down"),
    ("clean", "docker compose down -v"),
    ("validate", "python3 scripts/validate.py"),
    ("test", "python3 -m pytest"),
    ("twins", "bash twins/build.sh"),
    ("bench", "python3 demo_app/bench/bench.py"),
    ("dashboards", "python3 grafana/generate.py"),
    ("drill-reset", "python3 drills/drill.py --reset"),
    ("reload", "http://localhost:9090/-/reload"),
])
def test_target_runs_the_documented_command(target, expected):
    p = make("-n", target, "PYTHON=python3")
    assert p.returncode == 0, p.stderr
    assert expected in p.stdout, f"`make {target}` would run:\n{p.stdout}"


def test_drill_passes_the_scenario():
    p = make("-n", "drill", "SCENARIO=errors", "PYTHON=python3")
    assert "python3 drills/drill.py errors" in p.stdout, p.stdout


def test_down_keeps_volumes():
    assert " -v" not in make("-n", "down").stdout


def test_urls_names_every_published_ui():
    out = make("urls", env={"PATH": "/usr/bin:/bin", "BIND_ADDRESS": "127.0.0.1"}).stdout
    for port in (3000, 9090, 9093, 16686, 3100, 8090, 8080, 8081, 4318):
        assert f"http://localhost:{port}" in out, f"`make urls` misses port {port}:\n{out}"


# ---- scripts/init_env.py ------------------------------------------------------------

def _init(tmp_path):
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    return subprocess.run(["python3", str(REPO / "scripts" / "init_env.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=30)


def _values(path):
    return dict(re.findall(r"^(\w+)=(.*)$", path.read_text(), re.MULTILINE))


def test_first_run_creates_private_env_with_generated_secrets(tmp_path):
    p = _init(tmp_path)
    assert p.returncode == 0, p.stderr
    env = tmp_path / ".env"
    vals = _values(env)
    for secret in ("GRAFANA_ADMIN_PASSWORD", "DEMO_ADMIN_TOKEN"):
        assert len(vals[secret]) >= 24, f"{secret} not generated"
    assert vals["GRAFANA_ADMIN_PASSWORD"] != vals["DEMO_ADMIN_TOKEN"]
    assert vals["GRAFANA_ADMIN_PASSWORD"] != "admin"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600, "secrets file readable by others"
    assert str(env) in p.stdout and "GRAFANA_ADMIN_PASSWORD" in p.stdout, "does not say where the password is"


def test_second_run_keeps_existing_values(tmp_path):
    _init(tmp_path)
    first = (tmp_path / ".env").read_text()
    _init(tmp_path)
    assert (tmp_path / ".env").read_text() == first


def test_empty_secret_in_existing_env_is_filled(tmp_path):
    (tmp_path / ".env").write_text("GRAFANA_ADMIN_PASSWORD=mine\nDEMO_ADMIN_TOKEN=\n")
    _init(tmp_path)
    vals = _values(tmp_path / ".env")
    assert vals["GRAFANA_ADMIN_PASSWORD"] == "mine"
    assert len(vals["DEMO_ADMIN_TOKEN"]) >= 24
