"""What a new user meets before any test of the stack: the project venv `make test`
builds (scripts/venv.py), and secrets reaching containers as files, not variables."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from scripts import validate, venv
from tests.tooling import COMPOSE_FILE, REPO, require_image


# ---- scripts/venv.py: reused while the pins hold, rebuilt when one changes ----------

def _layout(root: Path) -> None:
    for rel in ("requirements-dev.txt", "demo_app/requirements.txt", "grafana/requirements.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, root / rel)


def test_venv_fingerprint_follows_every_included_requirements_file(tmp_path, monkeypatch):
    _layout(tmp_path)
    monkeypatch.setattr(venv, "REPO", tmp_path)
    monkeypatch.setattr(venv, "REQUIREMENTS", tmp_path / "requirements-dev.txt")
    files = {f.relative_to(tmp_path).as_posix() for f in venv.requirement_files(venv.REQUIREMENTS)}
    assert files == {"requirements-dev.txt", "demo_app/requirements.txt", "grafana/requirements.txt"}
    before = venv.fingerprint()
    assert venv.fingerprint() == before, "the fingerprint must be stable while nothing changes"
    included = tmp_path / "demo_app" / "requirements.txt"
    included.write_text(included.read_text().replace("fastapi==", "fastapi==0.0.0\n# was fastapi=="))
    assert venv.fingerprint() != before, "a changed pin in an included file must rebuild the venv"


def test_venv_is_reused_when_the_stamp_matches(tmp_path, monkeypatch):
    _layout(tmp_path)
    monkeypatch.setattr(venv, "REPO", tmp_path)
    monkeypatch.setattr(venv, "REQUIREMENTS", tmp_path / "requirements-dev.txt")
    monkeypatch.setattr(venv, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(venv, "STAMP", tmp_path / ".venv" / "requirements.sha256")
    created = []
    monkeypatch.setattr(venv, "create", lambda path: (created.append(path), path.mkdir(parents=True),
                                                      (path / "bin").mkdir(),
                                                      (path / "bin" / "python").touch()))
    venv.main()
    venv.main()
    assert created == [tmp_path / ".venv"], "a current venv must not be rebuilt"
    (tmp_path / "requirements-dev.txt").write_text((tmp_path / "requirements-dev.txt").read_text() + "\n# edit\n")
    venv.main()
    assert len(created) == 2, "an edited requirements file must rebuild the venv"


# ---- secrets reach containers as files --------------------------------------------

def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # --env-file: not the user's .env, which `make up` wrote and which holds a password.
    return subprocess.run(["docker", "compose", "--env-file", os.devnull, "-f", str(COMPOSE_FILE), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def busybox_env(tmp_path):
    """Environment running the grafana service on a busybox image (Prometheus' image has
    one), with its own project name and none of the user's .env."""
    image = require_image("PROMETHEUS_IMAGE")
    env = validate.compose_env(tmp_path)
    env.update(GRAFANA_IMAGE=image, COMPOSE_PROJECT_NAME=f"secrets-{uuid.uuid4().hex[:8]}")
    yield env
    _compose("down", "--volumes", "--remove-orphans", env=env)


def test_grafana_password_is_a_file_not_an_environment_variable(busybox_env):
    password = f"pw-{uuid.uuid4().hex}"
    env = {**busybox_env, "GRAFANA_ADMIN_PASSWORD": password}
    up = _compose("run", "-d", "--no-deps", "--name", env["COMPOSE_PROJECT_NAME"], "--entrypoint", "sleep",
                  "grafana", "300", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    name = env["COMPOSE_PROJECT_NAME"]
    try:
        inspect = json.loads(subprocess.run(["docker", "inspect", name], capture_output=True, text=True,
                                            check=True).stdout)[0]
        assert password not in json.dumps(inspect), "the password is visible in `docker inspect`"
        path = next(v for k, v in (e.split("=", 1) for e in inspect["Config"]["Env"])
                    if k == "GF_SECURITY_ADMIN_PASSWORD__FILE")
        got = subprocess.run(["docker", "exec", name, "cat", path], capture_output=True, text=True)
        assert got.stdout.strip() == password, f"{path} holds {got.stdout!r}: {got.stderr}"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_compose_refuses_to_start_grafana_without_a_password(busybox_env):
    env = {k: v for k, v in busybox_env.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    p = _compose("up", "-d", "--no-deps", "grafana", env=env)
    assert p.returncode != 0, "grafana started without GRAFANA_ADMIN_PASSWORD"
    assert "GRAFANA_ADMIN_PASSWORD" in p.stdout + p.stderr, p.stdout + p.stderr
