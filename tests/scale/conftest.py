"""The scale-out tier: docker-compose.yml + docker-compose.scale.yml in a compose project of
its own (obs-scale), on the twins or upstream images, after the default stack's tier is
done (tests/e2e/report.py orders it last and prints its figures)."""
from __future__ import annotations

import os

import pytest

from tests.e2e import stack as st
from tests.tooling import REPO, require_image

SCALE_FILE = REPO / "docker-compose.scale.yml"
# What the scale-out profile adds and the tests need: a missing one skips the tier, naming it.
NEEDED = ("THANOS_IMAGE", "OTELCOL_IMAGE", "PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "JAEGER_IMAGE", "DEMO_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("scale_out", {})


@pytest.fixture(scope="package")
def scale(tmp_path_factory: pytest.TempPathFactory):
    for var in NEEDED:
        require_image(var)
    # Fast grouping (the drill profile of Alertmanager) and Prometheus blocks of two
    # minutes, so the sidecars upload one while the tests run (2h in the profile itself).
    # The compactor looks every 30 s and takes a block as soon as it is uploaded.
    settings = {"ALERTMANAGER_CONFIG_FILE": "alertmanager.drill.yml", "PROMETHEUS_BLOCK_DURATION": "2m",
                "THANOS_COMPACT_INTERVAL": "30s", "THANOS_CONSISTENCY_DELAY": "0s"}
    project = os.environ.get("SCALE_PROJECT", "obs-scale")
    with st.compose_session(project, [REPO / "docker-compose.yml", SCALE_FILE], settings,
                            tmp_path_factory.mktemp("scale"), FIGURES) as s:
        yield s
