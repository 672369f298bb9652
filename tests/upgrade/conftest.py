"""The upgrade tier: the stack started on the previous minor release of each stateful
component (tests/upgrade/docker-compose.previous.yml: Prometheus, Alertmanager, Jaeger,
the collector), then moved to the current pins by `make upgrade` (scripts/upgrade.py) on
the same volumes; every item written by the old versions is counted by the new ones."""
from __future__ import annotations

import os

import pytest

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


@pytest.fixture(scope="package")
def old(tmp_path_factory: pytest.TempPathFactory):
    """The stack on the previous releases. `old.current` is the compose command of the same
    project on the current pins (what the stack's files say after a `git pull`)."""
    images = {var: require_image(var) for var in NEEDED}
    with st.compose_session(os.environ.get("UPGRADE_PROJECT", "obs-upgrade"), [REPO / "docker-compose.yml", PREVIOUS],
                            {**st.drill_profile(), **images}, tmp_path_factory.mktemp("upgrade"), FIGURES) as s:
        s.previous = list(s.compose_cmd)
        s.current = without(s.compose_cmd, PREVIOUS)
        yield s
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(st.to_json({k: v for k, v in FIGURES.items() if k not in ("memory_samples",)}) + "\n")
