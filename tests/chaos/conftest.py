"""The training-ground tier: a stack of its own (obs-chaos, the drill profile), fresh, so
that what it pages is what its own faults caused: a quiet healthy period first, then a
seeded fault schedule and its scorecard, then a drill recorded as a promtool test."""
from __future__ import annotations

import os

import pytest

from tests.e2e import stack as st

NEEDED = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "OTELCOL_IMAGE", "JAEGER_IMAGE", "DEMO_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("training", {})


@pytest.fixture(scope="package")
def ground(tmp_path_factory: pytest.TempPathFactory):
    with st.drill_stack(os.environ.get("CHAOS_PROJECT", "obs-chaos"), NEEDED, tmp_path_factory.mktemp("chaos"), FIGURES) as s:
        yield s
