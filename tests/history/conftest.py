"""The history tier: a fresh stack of its own (obs-history, the drill profile) that
`make history` backfills with a month of the demo's series ending in a slowly burning day."""
from __future__ import annotations

import os

import pytest

from tests.e2e import stack as st

NEEDED = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "DEMO_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("history", {})


@pytest.fixture(scope="package")
def fresh(tmp_path_factory: pytest.TempPathFactory):
    with st.drill_stack(os.environ.get("HISTORY_PROJECT", "obs-history"), NEEDED, tmp_path_factory.mktemp("history"), FIGURES) as s:
        yield s
