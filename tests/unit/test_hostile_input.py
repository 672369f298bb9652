"""Every HTTP surface of the demo survives hostile input, proven by generated tests:
schemathesis reads each role's OpenAPI schema (/openapi.json) and sends valid and
invalid requests (wrong types, out-of-range numbers, huge integers, missing and extra
fields, wrong media types) to the app in-process. No answer may be a 5xx; every 4xx has a
JSON body with a message; afterwards the service still answers /healthz.

The fault switch's endpoints run with the admin token (so their validation is reached)
and the faults are cleared after each case: an injected fault's 5xx is a feature.

The same holds with the stack shared (STACK_AUTH): each published role behind its published
listener's login (demo_app/published.py), with the login (same checks) and without it
(every answer a 401 with a JSON message, never the app's).
"""
from __future__ import annotations

import base64
import json
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from demo_app import alertsink, inventory, loadgen, shop
from demo_app.published import Authenticated
from demo_app.settings import AlertSinkSettings, InventorySettings, LoadgenSettings, ShopSettings
from demo_app.telemetry import Telemetry
from tests.tooling import REPO

from .conftest import ADMIN_TOKEN, AUTH, LoopbackServer

RESULTS = REPO / "build" / "hostile-input.json"
CASES: Counter[str] = Counter()  # role -> generated requests sent
SERVER_ERRORS: Counter[str] = Counter()
GENERATED = settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))


def _apps() -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    inv = inventory.create_app(InventorySettings(admin_token=ADMIN_TOKEN), Telemetry("inventory", enabled=False))
    # The inventory shop talks to: served over loopback HTTP for the session.
    backend = LoopbackServer(inventory.create_app(InventorySettings(), Telemetry("inventory", enabled=False)))
    return {
        "inventory": inv,
        "shop": shop.create_app(ShopSettings(admin_token=ADMIN_TOKEN, inventory_url=backend.url),
                                Telemetry("shop", enabled=False)),
        "loadgen": loadgen.create_app(LoadgenSettings(), Telemetry("loadgen", enabled=False)),
        "alert-sink": alertsink.create_app(
            AlertSinkSettings(store_path=str(tmp / "sink.db"), smtp_port=0, runbooks_dir=str(REPO / "docs" / "runbooks")),
            Telemetry("alert-sink", enabled=False)),
    }


APPS = _apps()
SCHEMAS = {role: schemathesis.openapi.from_asgi("/openapi.json", app) for role, app in APPS.items()}
for s in SCHEMAS.values():
    s.config.generation.update(modes=list(schemathesis.GenerationMode))
    # A body above the size limit gets 413 (documented on every route), valid or not.
    for check in (s.config.checks.negative_data_rejection, s.config.checks.positive_data_acceptance):
        check.expected_statuses = [*check.expected_statuses, "413"]


@schemathesis.check
def every_4xx_has_a_json_message(ctx, response, case) -> None:
    if 400 <= response.status_code < 500:
        try:
            body = json.loads(response.content)
        except ValueError:
            raise AssertionError(f"{response.status_code} without a JSON body: {response.content[:200]!r}")
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
            f"{response.status_code} body has no error message: {body}")


def _run(role: str, case, headers: dict | None = None) -> None:
    CASES[role] += 1
    response = case.call(headers=headers)
    if response.status_code >= 500:
        SERVER_ERRORS[role] += 1
    case.validate_response(response, additional_checks=[every_4xx_has_a_json_message])


def _not_admin(ctx) -> bool:
    return not ctx.operation.path.startswith("/admin")


@pytest.fixture(scope="module", autouse=True)
def _record():
    yield
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"cases": CASES, "server_errors": SERVER_ERRORS}, indent=2) + "\n")


@SCHEMAS["inventory"].exclude(path_regex="^/admin").parametrize()
@GENERATED
def test_inventory(case):
    _run("inventory", case)


@SCHEMAS["shop"].exclude(path_regex="^/admin").parametrize()
@GENERATED
def test_shop(case):
    _run("shop", case)


@SCHEMAS["loadgen"].parametrize()
@GENERATED
def test_loadgen(case):
    _run("loadgen", case)


@SCHEMAS["alert-sink"].parametrize()
@GENERATED
def test_alert_sink(case):
    _run("alert-sink", case)


@SCHEMAS["inventory"].include(path_regex="^/admin").parametrize()
@GENERATED
def test_fault_switch_with_the_token(case):
    try:
        _run("inventory", case, headers=AUTH)
    finally:
        APPS["inventory"].state.faults.clear()


# ---- the stack shared: the published listener's login in front of each published role
STACK_USER, STACK_PASSWORD = "stack", "hostile-input-password"
GUARDED = {role: Authenticated(APPS[role], STACK_USER, STACK_PASSWORD, ADMIN_TOKEN)
           for role in ("inventory", "shop", "alert-sink")}
LOGIN = {"Authorization": "Basic " + base64.b64encode(f"{STACK_USER}:{STACK_PASSWORD}".encode()).decode()}


def _run_guarded(role: str, case, headers: dict) -> None:
    CASES[f"{role} (login)"] += 1
    response = case.call(app=GUARDED[role], headers=headers)
    if response.status_code >= 500:
        SERVER_ERRORS[role] += 1
    case.validate_response(response, additional_checks=[every_4xx_has_a_json_message])


def _refused(role: str, case, headers: dict | None) -> None:
    CASES[f"{role} (no login)"] += 1
    response = case.call(app=GUARDED[role], headers=headers)
    if response.status_code >= 500:
        SERVER_ERRORS[role] += 1
    assert response.status_code == 401, (response.status_code, response.content[:200])
    assert json.loads(response.content)["error"]


@SCHEMAS["shop"].exclude(path_regex="^/admin").parametrize()
@GENERATED
def test_shop_behind_the_login(case):
    _run_guarded("shop", case, LOGIN)


@SCHEMAS["inventory"].exclude(path_regex="^/admin").parametrize()
@GENERATED
def test_inventory_behind_the_login(case):
    _run_guarded("inventory", case, LOGIN)


@SCHEMAS["alert-sink"].parametrize()
@GENERATED
def test_alert_sink_behind_the_login(case):
    _run_guarded("alert-sink", case, LOGIN)


@SCHEMAS["inventory"].include(path_regex="^/admin").parametrize()
@GENERATED
def test_fault_switch_behind_the_login_with_the_token(case):
    try:
        _run_guarded("inventory", case, AUTH)  # the admin token passes the published listener too
    finally:
        APPS["inventory"].state.faults.clear()


WRONG = [None, {"Authorization": "Basic " + base64.b64encode(f"{STACK_USER}:wrong".encode()).decode()},
         {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic %%%not-base64"}]


@SCHEMAS["shop"].parametrize()
@GENERATED
def test_shop_refuses_without_the_login(case):
    for headers in WRONG:
        _refused("shop", case, headers)


@SCHEMAS["alert-sink"].parametrize()
@GENERATED
def test_alert_sink_refuses_without_the_login(case):
    for headers in WRONG:
        _refused("alert-sink", case, headers)


@pytest.mark.parametrize("role", sorted(APPS))
def test_still_healthy_afterwards(role):
    with TestClient(APPS[role]) as client:
        assert client.get("/healthz").status_code == 200
    assert SERVER_ERRORS[role] == 0, f"{role} answered 5xx to generated input {SERVER_ERRORS[role]} time(s)"
