"""The scale-out tier: docker-compose.yml + docker-compose.scale.yml in a compose project of
its own (obs-scale), on the twins or upstream images, after the default stack's tier is
done (tests/e2e/report.py orders it last and prints its figures)."""
from __future__ import annotations

import json
import os

import pytest

from scripts import compose_info
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
    # The compactor looks every 30 s, takes a block as soon as it is uploaded and marks
    # for deletion what is older than 6 minutes (deleted 2 h later, as in the profile: the
    # store gateway serves a marked block until then). Thanos refuses a retention shorter
    # than its downsampling ranges (40 h raw, 10 d at 5m) unless downsampling is off.
    settings = {"ALERTMANAGER_CONFIG_FILE": "alertmanager.drill.yml", "PROMETHEUS_BLOCK_DURATION": "2m",
                "THANOS_COMPACT_INTERVAL": "30s", "THANOS_CONSISTENCY_DELAY": "0s", "THANOS_RETENTION": "6m"}
    workdir = tmp_path_factory.mktemp("scale")
    compact = compose_info.load_compose_yaml(SCALE_FILE)["services"]["thanos-compact"]["command"]
    short_retention = workdir / "compact.yml"
    short_retention.write_text(json.dumps({"services": {"thanos-compact": {
        "command": [*compact, "--downsampling.disable"]}}}))
    project = os.environ.get("SCALE_PROJECT", "obs-scale")
    with st.compose_session(project, [REPO / "docker-compose.yml", SCALE_FILE, short_retention], settings,
                            workdir, FIGURES) as s:
        yield s
