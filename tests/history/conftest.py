"""The history tier: a fresh stack of its own (obs-history, the drill profile) that
`make history` backfills with a month of the demo's series ending in a slowly burning day."""
from __future__ import annotations

import os

import pytest

from drills.target import Target
from tests.e2e import stack as st
from tests.tooling import REPO, require_image

NEEDED = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "DEMO_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("history", {})


@pytest.fixture(scope="package")
def fresh(tmp_path_factory: pytest.TempPathFactory):
    for var in NEEDED:
        require_image(var)
    project = os.environ.get("HISTORY_PROJECT", "obs-history")
    with st.compose_session(project, [REPO / "docker-compose.yml"], st.drill_profile(),
                            tmp_path_factory.mktemp("history"), FIGURES) as s:
        s.target = Target(s.compose_cmd, token=s.env["DEMO_ADMIN_TOKEN"])
        yield s
