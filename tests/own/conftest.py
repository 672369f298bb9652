"""The own-things tier: the stack as someone watching their own work runs it, the demo
switched off and both optional parts on (COMPOSE_PROFILES=containers,host), their own
target and rule in their places, a copy forwarded to a stand-in backend (where Loki is
absent, container log lines are counted there). At the end the demo is switched on
beside both parts, and the whole stack's memory is measured at the demo's load."""
from __future__ import annotations

import os
import secrets

import pytest

from drills.target import Target

from tests.e2e import remote
from tests.e2e import stack as st
from tests.tooling import REPO, require_image

NEEDED = ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "OTELCOL_IMAGE", "JAEGER_IMAGE", "DEMO_IMAGE",
          "NODE_EXPORTER_IMAGE", "TELEGRAF_IMAGE", "TELEMETRYGEN_IMAGE")
FIGURES: dict = st.MEASUREMENTS.setdefault("own", {})
FILES = [REPO / "docker-compose.yml", REPO / "docker-compose.forward-otlp.yml", remote.COMPOSE_FILE]
PROFILES = "containers,host"
# Every stand-in backend on this machine (another tier's too): CONTAINER_LOGS_EXCLUDE.
REMOTE_CONTAINERS = "*-remote-otlp-*"


@pytest.fixture(scope="package")
def own(tmp_path_factory: pytest.TempPathFactory):
    images = {var: require_image(var) for var in NEEDED}
    token = secrets.token_urlsafe(18)
    settings = {**st.drill_profile(), **remote.forward_settings(token), **images, "COMPOSE_PROFILES": PROFILES,
                # The stand-in backend prints every record it receives: were its lines
                # collected, each would come back as a dozen more, without end.
                "CONTAINER_LOGS_EXCLUDE": REMOTE_CONTAINERS}
    with st.compose_session(os.environ.get("OWN_PROJECT", "obs-own"), FILES, settings,
                            tmp_path_factory.mktemp("own"), FIGURES) as s:
        s.target = Target(s.compose_cmd, token=s.env["DEMO_ADMIN_TOKEN"], login=s.login)
        yield s
