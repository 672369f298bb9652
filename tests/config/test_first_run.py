"""What a new user meets before any test of the stack: the project venv `make test`
builds (scripts/venv.py), and secrets reaching containers as files, not variables."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from scripts import compose_info, envfile, init_env, venv
from tests.tooling import COMPOSE_FILE, REPO, require_image


# ---- scripts/venv.py: a hashed lock that agrees with the pins; reused while it holds ----

def _layout(root: Path, monkeypatch) -> None:
    for rel in ("requirements-dev.txt", "requirements.lock", "demo_app/requirements.txt", "demo_app/requirements.lock",
                "grafana/requirements.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, root / rel)
    monkeypatch.setattr(venv, "REPO", root)
    monkeypatch.setattr(venv, "REQUIREMENTS", root / "requirements-dev.txt")
    monkeypatch.setattr(venv, "LOCK", root / "requirements.lock")
    monkeypatch.setattr(venv, "DEMO_REQUIREMENTS", root / "demo_app" / "requirements.txt")
    monkeypatch.setattr(venv, "DEMO_LOCK", root / "demo_app" / "requirements.lock")


def test_the_lock_agrees_with_every_pin():
    files = {f.relative_to(REPO).as_posix() for f in venv.requirement_files(venv.REQUIREMENTS)}
    assert files == {"requirements-dev.txt", "demo_app/requirements.txt", "grafana/requirements.txt"}
    assert not venv.stale_pins(), f"run `make lock`: {venv.stale_pins()}"


@pytest.mark.parametrize("lock", [venv.LOCK, venv.DEMO_LOCK], ids=lambda p: str(p.relative_to(REPO)))
def test_every_locked_package_is_exact_and_hashed(lock):
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 2)[2])
    assert len(entries) > 30
    for entry in entries:
        head = entry.split("\\", 1)[0].strip()
        assert venv.PIN.match(head), f"not an exact pin in {lock.name}: {head}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{head} has no hash"


def test_a_pin_the_lock_lacks_is_named(tmp_path, monkeypatch):
    _layout(tmp_path, monkeypatch)
    included = tmp_path / "demo_app" / "requirements.txt"
    included.write_text(included.read_text().replace("fastapi==", "fastapi==0.0.1\n# was fastapi==", 1))
    locked = venv.pins(venv.LOCK.read_text())["fastapi"]
    assert venv.stale_pins() == [f"fastapi==0.0.1 (requirements.lock: {locked})",
                                 f"fastapi==0.0.1 (demo_app/requirements.lock: {locked})"]
    with pytest.raises(SystemExit, match="run `make lock`"):
        venv.main()


def test_venv_is_reused_while_the_lock_holds(tmp_path, monkeypatch):
    _layout(tmp_path, monkeypatch)
    monkeypatch.setattr(venv, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(venv, "STAMP", tmp_path / ".venv" / "requirements.sha256")
    created = []
    monkeypatch.setattr(venv, "create", lambda path: (created.append(path), path.mkdir(parents=True),
                                                      (path / "bin").mkdir(),
                                                      (path / "bin" / "python").touch()))
    venv.main()
    venv.main()
    assert created == [tmp_path / ".venv"], "a current venv must not be rebuilt"
    (tmp_path / "requirements.lock").write_text((tmp_path / "requirements.lock").read_text() + "\n# edit\n")
    venv.main()
    assert len(created) == 2, "a changed lock must rebuild the venv"


# ---- secrets reach containers as files --------------------------------------------

def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # --env-file: not the user's .env, which `make up` wrote and which holds a password.
    return subprocess.run(["docker", "compose", "--env-file", os.devnull, "-f", str(COMPOSE_FILE), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def busybox_env(tmp_path):
    """Environment running the grafana service on a busybox image (Prometheus' image has
    one), with its own project name, its own secrets folder and none of the user's .env."""
    image = require_image("PROMETHEUS_IMAGE")
    env = {**os.environ, "GRAFANA_IMAGE": image, "COMPOSE_PROJECT_NAME": f"secrets-{uuid.uuid4().hex[:8]}",
           "SECRETS_DIR": str(tmp_path / "secrets")}
    yield env
    _compose("down", "--volumes", "--remove-orphans", env=env)


def test_make_env_writes_every_secret_to_its_own_file(tmp_path, monkeypatch):
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    assert init_env.main(tmp_path) == 0
    values = envfile.read(tmp_path / ".env")
    folder = tmp_path / ".secrets"
    assert folder.stat().st_mode & 0o777 == 0o700, oct(folder.stat().st_mode)
    for var, name in envfile.SECRET_FILES.items():
        assert (folder / name).read_text() == envfile.RENDER.get(var, str)(values.get(var, "")), name
    assert len(values["GRAFANA_ADMIN_PASSWORD"]) >= 24 and len(values["DEMO_ADMIN_TOKEN"]) >= 24
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600


def test_secrets_are_files_never_variables(busybox_env):
    password, token = f"pw-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
    envfile.write_secrets({"GRAFANA_ADMIN_PASSWORD": password, "DEMO_ADMIN_TOKEN": token},
                         Path(busybox_env["SECRETS_DIR"]))
    config = _compose("config", env=busybox_env)
    assert config.returncode == 0, config.stderr
    assert password not in config.stdout and token not in config.stdout, "`docker compose config` prints a secret"
    up = _compose("run", "-d", "--no-deps", "--name", busybox_env["COMPOSE_PROJECT_NAME"], "--entrypoint", "sleep",
                  "grafana", "300", env=busybox_env)
    assert up.returncode == 0, up.stdout + up.stderr
    name = busybox_env["COMPOSE_PROJECT_NAME"]
    try:
        inspect = json.loads(subprocess.run(["docker", "inspect", name], capture_output=True, text=True,
                                            check=True).stdout)[0]
        assert password not in json.dumps(inspect), "the password is visible in `docker inspect`"
        assert inspect["HostConfig"]["ReadonlyRootfs"], "grafana runs on a writable root filesystem"
        path = next(v for k, v in (e.split("=", 1) for e in inspect["Config"]["Env"])
                    if k == "GF_SECURITY_ADMIN_PASSWORD__FILE")
        got = subprocess.run(["docker", "exec", name, "cat", path], capture_output=True, text=True)
        assert got.stdout.strip() == password, f"{path} holds {got.stdout!r}: {got.stderr}"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_forwarding_secrets_stay_out_of_compose_config(tmp_path):
    """The API key of a forwarding backend and the remote_write password reach the
    collector and Prometheus as files; `docker compose config` of the forwarding overlays
    prints neither, and the headers file is the YAML map the collector reads."""
    key, password = f"key-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    secrets_dir = tmp_path / "secrets"
    envfile.write_secrets({"FORWARD_OTLP_HEADERS": f"x-api-key={key},authorization=Bearer%20{password}",
                           "PROMETHEUS_REMOTE_WRITE_PASSWORD": password}, secrets_dir)
    assert yaml.safe_load((secrets_dir / "forward_otlp_headers").read_text()) == {
        "x-api-key": key, "authorization": f"Bearer {password}"}
    env = {**os.environ, "SECRETS_DIR": str(secrets_dir), "FORWARD_OTLP_ENDPOINT": "backend.example.com:4317",
           "PROMETHEUS_REMOTE_WRITE_URL": "https://backend.example.com/api/v1/push"}
    files = [REPO / f for f in compose_info.compose_files(REPO, user=env, extras=False)]
    assert [f.name for f in files if "forward" in f.name or "remote" in f.name] == [
        "docker-compose.forward-otlp.yml", "docker-compose.remote-write.yml"]
    config = subprocess.run(["docker", "compose", "--env-file", os.devnull, *[a for f in files for a in ("-f", str(f))],
                             "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert config.returncode == 0, config.stderr
    assert key not in config.stdout and password not in config.stdout, "`docker compose config` prints a secret"


def test_forwarding_changes_nothing_while_unset():
    """No forwarding setting: the compose files are the shipped ones, no overlay."""
    files = compose_info.compose_files(REPO, user={}, extras=True)
    assert not [f for f in files if f in compose_info.FORWARD_FILES.values()], files
    assert files[-1] == compose_info.EXTRAS_FILE, "the user's extras must be loaded last"


def test_bad_forward_headers_are_refused_with_their_name():
    with pytest.raises(ValueError, match="FORWARD_OTLP_HEADERS.*'x-api-key'"):
        envfile.otlp_headers_yaml("x-api-key")


def test_compose_refuses_to_start_grafana_without_a_password(busybox_env):
    p = _compose("up", "-d", "--no-deps", "grafana", env=busybox_env)  # no secrets written
    assert p.returncode != 0, "grafana started without its password file"
    assert "grafana_admin_password" in p.stdout + p.stderr, p.stdout + p.stderr
