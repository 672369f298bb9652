"""The upgrade tier: the stack started on the previous minor release of each stateful
component (tests/upgrade/docker-compose.previous.yml: Prometheus, Alertmanager, Jaeger,
the collector), then moved to the current pins by `make upgrade` (scripts/upgrade.py) on
the same volumes; every item written by the old versions is counted by the new ones."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts import places
from tests.e2e import stack as st
from tests.tooling import REPO, require_image

PREVIOUS = REPO / "tests" / "upgrade" / "docker-compose.previous.yml"
NEEDED = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "JAEGER_IMAGE", "OTELCOL_IMAGE", "DEMO_IMAGE",
          "PROMETHEUS_PREVIOUS_IMAGE", "ALERTMANAGER_PREVIOUS_IMAGE", "JAEGER_PREVIOUS_IMAGE", "OTELCOL_PREVIOUS_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("upgrade", {})
RESULTS = REPO / "build" / "upgrade-tier.json"


def without(cmd: list[str], path) -> list[str]:
    """A compose command without one of its `-f FILE` pairs."""
    out, skip = [], False
    for i, a in enumerate(cmd):
        if skip:
            skip = False
            continue
        if a == "-f" and i + 1 < len(cmd) and cmd[i + 1] == str(path):
            skip = True
            continue
        out.append(a)
    return out


def receivers_of(image: str) -> set[str]:
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "components"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    section = out.split("receivers:", 1)[1].split("processors:", 1)[0] if "receivers:" in out else ""
    return set(re.findall(r"^\s*- name: ([a-z_]+)\s*$", section, re.MULTILINE))


def collector_as_built(image: str, workdir: Path) -> Path | None:
    """An overlay giving the previous collector the stack's config without the receivers its
    image lacks (the previous collector's twin has no tcp_log: docker-compose.previous.yml), and their
    pipelines; None when it has them all (the upstream image)."""
    config = yaml.safe_load((REPO / "otel-collector" / "config.yml").read_text())
    missing = {name for name in config["receivers"] if name.split("/")[0] not in receivers_of(image)}
    if not missing:
        return None
    for name in missing:
        del config["receivers"][name]
    pipelines = config["service"]["pipelines"]
    for name in [n for n, p in pipelines.items() if set(p["receivers"]) & missing]:
        del pipelines[name]
    folder = workdir / "otelcol-previous"
    # Your places (config.extras.yml) are mountpoints in the folder: make them before the copy
    # (compose_session makes them in the repo, but only after this; a fresh clone has none).
    places.create(REPO)
    shutil.copytree(REPO / "otel-collector", folder)
    (folder / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    FIGURES["previous_collector_without"] = sorted(missing)
    overlay = workdir / "previous-collector.yml"
    overlay.write_text(f"services:\n  otel-collector:\n    volumes:\n      - {folder}:/etc/otelcol:ro\n")
    return overlay


@pytest.fixture(scope="package")
def old(tmp_path_factory: pytest.TempPathFactory):
    """The stack on the previous releases. `old.current` is the compose command of the same
    project on the current pins (what the stack's files say after a `git pull`)."""
    images = {var: require_image(var) for var in NEEDED}
    workdir = tmp_path_factory.mktemp("upgrade")
    files = [REPO / "docker-compose.yml", PREVIOUS]
    if overlay := collector_as_built(images["OTELCOL_PREVIOUS_IMAGE"], workdir):
        files.append(overlay)
    with st.compose_session(os.environ.get("UPGRADE_PROJECT", "obs-upgrade"), files,
                            {**st.drill_profile(), **images}, workdir, FIGURES) as s:
        s.previous = list(s.compose_cmd)
        s.current = without(without(s.compose_cmd, PREVIOUS), overlay) if overlay else without(s.compose_cmd, PREVIOUS)
        yield s
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(st.to_json({k: v for k, v in FIGURES.items() if k not in ("memory_samples",)}) + "\n")
