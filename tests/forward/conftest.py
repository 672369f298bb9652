"""The forwarding tier: the stack (drill profile) with both forwarding overlays on, beside
stand-ins for a team's own backends (docker-compose.remote-*.yml): the collector tees every
signal to remote-otlp, which asks for a bearer token, and Prometheus remote-writes to a
Thanos Receive, read back through a Thanos Query."""
from __future__ import annotations

import os
import secrets

import pytest

from tests.e2e import remote
from tests.e2e import stack as st
from tests.tooling import REPO, require_image

NEEDED = ("PROMETHEUS_IMAGE", "OTELCOL_IMAGE", "JAEGER_IMAGE", "THANOS_IMAGE", "DEMO_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("forwarding", {})
RESULTS = REPO / "build" / "forward.json"
FILES = [REPO / "docker-compose.yml", REPO / "docker-compose.forward-otlp.yml",
         REPO / "docker-compose.remote-write.yml", remote.COMPOSE_FILE,
         REPO / "tests" / "forward" / "docker-compose.remote-thanos.yml"]


def forward_settings(token: str) -> dict[str, str]:
    """What a user would put into .env to forward to these backends."""
    return {**remote.forward_settings(token),
            "PROMETHEUS_REMOTE_WRITE_URL": "http://thanos-receive:19291/api/v1/receive"}


@pytest.fixture(scope="package")
def fwd(tmp_path_factory: pytest.TempPathFactory):
    images = {var: require_image(var) for var in NEEDED}  # the stand-ins run the stack's own images
    token = secrets.token_urlsafe(18)
    settings = {**st.drill_profile(), **forward_settings(token), **images}
    with st.compose_session(os.environ.get("FORWARD_PROJECT", "obs-forward"), FILES, settings,
                            tmp_path_factory.mktemp("forward"), FIGURES) as s:
        s.token = token
        yield s
    # The tier's figures on their own too (the README cites them), whatever else ran.
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(st.to_json({k: v for k, v in FIGURES.items() if k not in ("memory_samples",)}) + "\n")
