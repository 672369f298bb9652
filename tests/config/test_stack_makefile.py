"""The Makefile's help and the first-run .env creation (`make up` -> scripts/init_env.py).
What the targets do is tested by running them: `make test` itself, `make reload` and
`make urls` against the e2e stack (tests/e2e/test_stack.py)."""
from __future__ import annotations

import re
import shutil
import stat
import subprocess


from tests.tooling import REPO

# What the README tells a user to type.
TARGETS = ["up", "down", "restart", "ps", "logs", "urls", "validate", "venv", "test", "reload", "clean",
           "twins", "bench", "dashboards", "drill", "drill-reset", "grafana-password"]


def make(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args],
                          capture_output=True, text=True, timeout=60, **kw)


def test_help_is_the_default_and_lists_every_target():
    p = make()
    assert p.returncode == 0, p.stderr
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", p.stdout, re.MULTILINE))
    for t in TARGETS:
        assert t in listed and listed[t].strip(), f"`make help` has no help line for {t}"


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


def test_settings_added_since_an_older_env_are_appended(tmp_path):
    (tmp_path / ".env").write_text("GRAFANA_ADMIN_PASSWORD=mine\nDEMO_ADMIN_TOKEN=tok\nBIND_ADDRESS=0.0.0.0\n")
    p = _init(tmp_path)
    vals = _values(tmp_path / ".env")
    example = _values(REPO / ".env.example")
    assert vals["GRAFANA_ADMIN_PASSWORD"] == "mine" and vals["BIND_ADDRESS"] == "0.0.0.0", "a value was changed"
    assert set(example) <= set(vals), f"not added: {sorted(set(example) - set(vals))}"
    assert vals["SLACK_WEBHOOK_URL"] == example["SLACK_WEBHOOK_URL"] and "SLACK_WEBHOOK_URL" in p.stdout
