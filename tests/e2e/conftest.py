"""e2e tier: one session-scoped compose stack on the real docker-compose.yml.

Only services whose images are here (local or pullable) are started; a test names the
services it needs (`@pytest.mark.services(...)`) and skips, naming the image, when one
cannot run (fails instead when CI listed that image in REQUIRED_IMAGES). Without a Docker
engine the whole tier skips with one message. The end-of-run report (signals proven or
skipped, the measurements) is tests/e2e/report.py, for every stack tier.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from scripts import compose_info
from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.report import no_engine_reason, signal_of
from tests.tooling import COMPOSE_FILE, REPO, require_image, required_images


def default_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared: bool = False):
    """The default stack on the twins or upstream images, one per package that uses it (the
    e2e, days and auth tiers, which may run side by side: projects obs-e2e, obs-days and
    obs-auth, or E2E_PROJECT / DAYS_PROJECT / AUTH_PROJECT); torn down when the package is
    done. `shared`: as `make up` starts it with STACK_AUTH on (TLS and logins)."""
    if reason := no_engine_reason():  # only reached when REQUIRED_IMAGES is set
        pytest.fail(f"{reason}, but REQUIRED_IMAGES lists {sorted(required_images())}")
    if not COMPOSE_FILE.exists():
        pytest.fail(f"{COMPOSE_FILE} is missing")
    user = {"STACK_AUTH": "on"} if shared else {}
    files = [REPO / f for f in compose_info.compose_files(REPO, user=user, extras=False)]
    package = Path(request.node.path).name
    project = os.environ.get(f"{package.upper()}_PROJECT", f"obs-{package}")
    with st.compose_session(project, files, st.drill_profile(), tmp_path_factory.mktemp(package),
                            st.MEASUREMENTS) as s:
        yield s


@pytest.fixture(scope="package")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from default_stack(request, tmp_path_factory)


@pytest.fixture(scope="package")
def warm(stack: st.Stack) -> st.Stack:
    """Warm-up traffic on top of the load generator: a few direct requests of each kind."""
    if "shop" in stack.running():
        for _ in range(5):
            requests.get(clients.url("shop", "/api/products"), timeout=10)
            requests.get(clients.url("shop", "/api/products/1"), timeout=10)
            requests.post(clients.url("shop", "/api/checkout"), json={"product_id": 1, "quantity": 1}, timeout=10)
    return stack


@pytest.fixture(autouse=True)
def _needed_services(request: pytest.FixtureRequest) -> None:
    """Skip (naming the image) or fail before an e2e test whose services cannot run."""
    mark = request.node.get_closest_marker("services")
    if mark is None:
        return
    signal = signal_of(request.node.nodeid, "stack")
    extra = set(mark.args) - set(st.SIGNALS.get(signal, mark.args))
    assert not extra, f"{request.node.name} needs {extra}, missing from stack.SIGNALS[{signal!r}]"
    s: st.Stack = request.getfixturevalue("stack")
    for svc in mark.args:
        if svc not in s.plan.image_vars:
            pytest.fail(f"test needs {svc!r}, which is not a default service of docker-compose.yml")
        var = s.plan.image_vars[svc]
        if svc in s.plan.missing:
            if var:
                require_image(var)  # skips naming the image, or fails when REQUIRED_IMAGES has it
            reason = f"needs {svc}, which cannot start: {s.plan.missing[svc]}"
            if var in required_images():
                pytest.fail(f"{reason} (and REQUIRED_IMAGES lists {var})")
            pytest.skip(reason)
    containers = s.containers()
    down = {svc: containers.get(svc, {}).get("State", "absent") for svc in mark.args}
    down = {svc: state for svc, state in down.items() if state != "running"}
    if down:
        pytest.fail(f"services were started but are not running now: {down}\n{s.logs(*down)}")
