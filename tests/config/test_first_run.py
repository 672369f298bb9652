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
from urllib.parse import unquote

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

def _compose(*args: str, env: dict[str, str], env_file: str = os.devnull,
             files: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    # --env-file: not the user's .env (a test's own, or none).
    return subprocess.run(["docker", "compose", "--env-file", env_file,
                           *[a for f in files or [COMPOSE_FILE] for a in ("-f", str(f))], *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _users_env_file(tmp_path: Path, **settings: str) -> tuple[Path, dict[str, str]]:
    """A .env as `make up` leaves it: every secret of the catalogue set (a value of its own,
    easy to find in any output), its files written under SECRETS_DIR, plus `settings`."""
    values = {var: f"{name}-{uuid.uuid4().hex}" for var, name in envfile.SECRET_FILES.items()}
    values["FORWARD_OTLP_HEADERS"] = f"x-api-key=key-{uuid.uuid4().hex},authorization=Bearer%20tok-{uuid.uuid4().hex}"
    values.update(settings)
    envfile.write_secrets(values, tmp_path / "secrets")
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in {**values, "SECRETS_DIR": str(tmp_path / "secrets")}.items()))
    secrets = [v for k, v in values.items() if k in envfile.SECRET_FILES]
    secrets += [unquote(p.partition("=")[2]).split()[-1] for p in values["FORWARD_OTLP_HEADERS"].split(",")]
    return path, {"values": values, "secrets": secrets}


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


def test_secrets_are_files_never_variables(busybox_env, tmp_path):
    """Given every secret as a user's .env holds them, `docker compose config` prints none
    and `docker inspect` of a container shows none; the container reads its secret from
    the file compose mounted."""
    env_file, made = _users_env_file(tmp_path)
    password = made["values"]["GRAFANA_ADMIN_PASSWORD"]
    config = _compose("config", env=busybox_env, env_file=str(env_file))
    assert config.returncode == 0, config.stderr
    shown = [s for s in made["secrets"] if s in config.stdout]
    assert not shown, f"`docker compose config` prints {len(shown)} secret(s) of .env"
    up = _compose("run", "-d", "--no-deps", "--name", busybox_env["COMPOSE_PROJECT_NAME"], "--entrypoint", "sleep",
                  "grafana", "300", env=busybox_env, env_file=str(env_file))
    assert up.returncode == 0, up.stdout + up.stderr
    name = busybox_env["COMPOSE_PROJECT_NAME"]
    try:
        inspect = json.dumps(json.loads(subprocess.run(["docker", "inspect", name], capture_output=True, text=True,
                                                       check=True).stdout)[0])
        shown = [s for s in made["secrets"] if s in inspect]
        assert not shown, f"`docker inspect` shows {len(shown)} secret(s) of .env"
        assert json.loads(inspect)["HostConfig"]["ReadonlyRootfs"], "grafana runs on a writable root filesystem"
        path = next(v for k, v in (e.split("=", 1) for e in json.loads(inspect)["Config"]["Env"])
                    if k == "GF_SECURITY_ADMIN_PASSWORD__FILE")
        got = subprocess.run(["docker", "exec", name, "cat", path], capture_output=True, text=True)
        assert got.stdout.strip() == password, f"{path} holds another value: {got.stderr}"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_forwarding_secrets_stay_out_of_compose_config(tmp_path):
    """The API key of a forwarding backend and the remote_write password, set in .env as a
    user sets them, reach the collector and Prometheus as files; `docker compose config`
    of the forwarding overlays (the scale-out profile's too) prints none of them, and the
    headers file is the YAML map the collector reads."""
    settings = {"FORWARD_OTLP_ENDPOINT": "backend.example.com:4317",
                "PROMETHEUS_REMOTE_WRITE_URL": "https://backend.example.com/api/v1/push"}
    env_file, made = _users_env_file(tmp_path, **settings)
    headers = made["values"]["FORWARD_OTLP_HEADERS"]
    assert yaml.safe_load((tmp_path / "secrets" / "forward_otlp_headers").read_text()) == {
        k: unquote(v) for k, v in (p.split("=", 1) for p in headers.split(","))}
    env = {**os.environ, "SECRETS_DIR": str(tmp_path / "secrets")}
    for scale in (False, True):
        files = [REPO / f for f in compose_info.compose_files(REPO, user=settings, extras=False, scale=scale)]
        assert {"docker-compose.forward-otlp.yml", "docker-compose.remote-write.yml"} <= {f.name for f in files}
        config = _compose("config", env=env, env_file=str(env_file), files=files)
        assert config.returncode == 0, config.stderr
        shown = [s for s in made["secrets"] if s in config.stdout]
        assert not shown, f"`docker compose config` (scale-out: {scale}) prints {len(shown)} secret(s) of .env"


def test_stack_auth_secrets_stay_out_of_compose_config(tmp_path):
    """The stack shared (STACK_AUTH): the login's password and the OTLP token, as a user's
    .env holds them, appear nowhere in `docker compose config` of the shared stack (they
    reach the services as files: scripts/auth.py's folder)."""
    env_file, made = _users_env_file(tmp_path, STACK_AUTH="on", BIND_ADDRESS="0.0.0.0")
    files = [REPO / f for f in compose_info.compose_files(REPO, user=made["values"], extras=False)]
    assert compose_info.AUTH_FILE in {f.name for f in files}
    config = _compose("config", env={**os.environ, "SECRETS_DIR": str(tmp_path / "secrets")},
                      env_file=str(env_file), files=files)
    assert config.returncode == 0, config.stderr
    assert "/run/stack-auth" in config.stdout, "the auth overlay is not in the config"
    shown = [s for s in made["secrets"] if s in config.stdout]
    assert not shown, f"`docker compose config` of the shared stack prints {len(shown)} secret(s) of .env"


def test_forwarding_changes_nothing_while_unset(tmp_path):
    """No forwarding setting: the compose files are the shipped ones, no overlay; the
    user's extras file, once `make up` has created it, comes last."""
    assert compose_info.compose_files(tmp_path, user={}, extras=True) == [compose_info.BASE_FILE]
    (tmp_path / compose_info.EXTRAS_FILE).write_text("services: {}\n")
    files = compose_info.compose_files(tmp_path, user={}, extras=True)
    assert not [f for f in files if f in compose_info.FORWARD_FILES.values()], files
    assert files[-1] == compose_info.EXTRAS_FILE, "the user's extras must be loaded last"


@pytest.mark.parametrize("headers", ["Bearer sk-live-51Hx9secret", "authorization: Bearer sk-live-51Hx9secret",
                                     "x-api-key=ok,sk-live-51Hx9secret", "=sk-live-51Hx9secret"])
def test_a_bad_header_names_the_setting_never_its_value(tmp_path, headers):
    """`make up` (init_env) refuses FORWARD_OTLP_HEADERS it cannot turn into headers, says
    which setting and which item, and prints nothing of the value: a mistyped header is
    usually a token pasted as it is."""
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    (tmp_path / ".env").write_text(f"FORWARD_OTLP_HEADERS={headers}\n")
    p = subprocess.run(["python3", str(REPO / "scripts" / "init_env.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=30, env={**os.environ, "SECRETS_DIR": str(tmp_path / "s")})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FORWARD_OTLP_HEADERS" in p.stderr and "item" in p.stderr, p.stderr
    assert "sk-live" not in p.stdout + p.stderr, f"the value is printed: {p.stdout + p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr


def test_compose_refuses_to_start_grafana_without_a_password(busybox_env):
    p = _compose("up", "-d", "--no-deps", "grafana", env=busybox_env)  # no secrets written
    assert p.returncode != 0, "grafana started without its password file"
    assert "grafana_admin_password" in p.stdout + p.stderr, p.stdout + p.stderr


# ---- settings read one way: make and compose both read .env --------------------------

def test_secrets_dir_set_in_env_is_where_make_up_writes_the_secrets(tmp_path, monkeypatch):
    """compose reads SECRETS_DIR from .env; `make up` (init_env) writes the files there too."""
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    (tmp_path / ".env").write_text("SECRETS_DIR=kept-elsewhere\n")
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    assert init_env.main(tmp_path) == 0
    assert (tmp_path / "kept-elsewhere" / "grafana_admin_password").read_text(), "not written where .env says"
    assert not (tmp_path / ".secrets").exists(), "written to the default folder instead"


def test_make_urls_uses_stack_host_from_env_file(tmp_path, monkeypatch):
    monkeypatch.delenv("STACK_HOST", raising=False)
    (tmp_path / ".env").write_text("STACK_HOST=box.lan\n")
    assert compose_info.browser_host("127.0.0.1", compose_info.settings(tmp_path)) == "box.lan"
    assert compose_info.browser_host("127.0.0.1", {}) == "localhost"
    assert compose_info.browser_host("10.0.0.5", {}) == "10.0.0.5"


def test_make_up_refuses_a_compose_older_than_the_overlays_need(monkeypatch, capsys):
    monkeypatch.setattr(compose_info, "compose_version", lambda: (2, 20, 3))
    assert compose_info.check_compose() == 1
    assert "2.20.3 is too old" in capsys.readouterr().err
    monkeypatch.setattr(compose_info, "compose_version", lambda: compose_info.MIN_COMPOSE)
    assert compose_info.check_compose() == 0
    assert compose_info.compose_version() >= compose_info.MIN_COMPOSE, "this machine's Compose is too old"
