"""Every way to start the stack keeps the user's settings: `make up`, `make drill-up` and
`make up-scale` load the forwarding overlays the settings ask for and the user's extras
files last, and the collector that receives (the scale-out agent too) runs the copy's
tee, the forwarding file and config.extras.yml, in that order. Read from what make
would run (`make -n`) and what compose makes of it (`docker compose config`)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.tooling import REPO

SETTINGS = {"FORWARD_OTLP_ENDPOINT": "backend.example.com:4317",
            "PROMETHEUS_REMOTE_WRITE_URL": "https://backend.example.com/api/v1/push"}
TARGETS = {"up": False, "drill-up": False, "up-scale": True}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> str:
    """A copy of the repository with the user's places made and a compose extras file of
    theirs that marks the collector, so its presence shows in the merged config."""
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"],
                                                        capture_output=True).returncode != 0:
        pytest.skip("docker compose not available")
    root = tmp_path_factory.mktemp("checkout") / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, root / f)
    subprocess.run(["python3", "scripts/places.py"], cwd=root, check=True, capture_output=True)
    (root / "docker-compose.extras.yml").write_text(
        "services:\n  otel-collector:\n    labels: {mine: \"yes\"}\n")
    return str(root)


def _compose_file(root: str, target: str) -> str:
    """The COMPOSE_FILE `make TARGET` runs compose with (from `make -n`)."""
    env = {**os.environ, **SETTINGS}
    env.pop("COMPOSE_FILE", None)
    out = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=root, env=env,
                         capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"COMPOSE_FILE=(\S+) docker compose up", out) or re.search(r"COMPOSE_FILE=(\S+)", out)
    if m:
        return m.group(1)
    # Not set on the command line: the value the Makefile exports to every recipe.
    return subprocess.run(["make", "--no-print-directory", "--eval", "print-compose-file: ; @echo $(COMPOSE_FILE)",
                           "print-compose-file"], cwd=root, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("target", TARGETS)
def test_every_way_to_start_keeps_forwarding_and_your_extras(checkout, target):
    files = _compose_file(checkout, target).split(":")
    assert files[-1] == "docker-compose.extras.yml", f"make {target}: your extras are not last: {files}"
    for overlay in ("docker-compose.forward-otlp.yml", "docker-compose.remote-write.yml"):
        assert overlay in files, f"make {target} leaves out {overlay}: {files}"
    env = {**os.environ, **SETTINGS, "COMPOSE_FILE": ":".join(files), "SECRETS_DIR": os.devnull}
    p = subprocess.run(["docker", "compose", "--env-file", os.devnull, "config", "--no-interpolate"],
                       cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    collector = yaml.safe_load(p.stdout)["services"]["otel-collector"]
    configs = [a.removeprefix("--config=/etc/otelcol/") for a in collector["command"]]
    role = ["config.yml", "config.agent.yml"] if TARGETS[target] else ["config.yml"]
    assert configs == [*role, "forward.tee.yml", "forward.${FORWARD_OTLP_PROTOCOL:-grpc}.yml", "config.extras.yml"], (
        f"make {target}: the collector that receives runs {configs}")
    assert collector["labels"].get("mine") == "yes", f"make {target}: your docker-compose.extras.yml is not applied"
    services = yaml.safe_load(p.stdout)["services"]
    for name in ("prometheus", "prometheus-b") if TARGETS[target] else ("prometheus",):
        env = " ".join(services[name]["environment"])
        assert "PROMETHEUS_REMOTE_WRITE_URL=" in env, f"make {target}: {name} does not remote-write"
