"""The fault switch: auth, validation with clear 400s, and its effect on behaviour."""

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from demo_app import faults as faults_module
from demo_app import inventory
from demo_app.settings import ConfigError, InventorySettings, load
from demo_app.telemetry import Telemetry

from .conftest import ADMIN_TOKEN, AUTH


@pytest.fixture
def inv_client():
    tel = Telemetry("inventory", enabled=False)
    app = inventory.create_app(InventorySettings(admin_token=ADMIN_TOKEN), tel)
    with TestClient(app) as client:
        yield client


def test_admin_requires_the_bearer_token(inv_client):
    assert inv_client.get("/admin/faults").status_code == 401
    assert inv_client.get("/admin/faults", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = inv_client.post("/admin/faults", json={"outage": True}, headers={"Authorization": "Basic " + ADMIN_TOKEN})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert inv_client.get("/api/items").status_code == 200  # nothing changed
    assert inv_client.get("/admin/faults", headers=AUTH).json()["outage"] is False


def test_admin_disabled_without_token():
    app = inventory.create_app(InventorySettings(admin_token=""), Telemetry("inventory", enabled=False))
    with TestClient(app) as client:
        r = client.get("/admin/faults", headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "DEMO_ADMIN_TOKEN" in r.json()["error"]


@pytest.mark.parametrize("body, needle", [
    ({"error_ratio": 1.5}, "error_ratio"),
    ({"error_ratio": -0.1}, "error_ratio"),
    ({"error_ratio": "0.5"}, "error_ratio"),
    ({"error_ratio": True}, "error_ratio"),
    ({"exception_ratio": 2}, "exception_ratio"),
    ({"latency_ms": 10001}, "latency_ms"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"latency_jitter_ms": 20000}, "latency_jitter_ms"),
    ({"outage": "yes"}, "outage"),
    ({"outage": 1}, "outage"),
    ({"error_rate": 0.5}, "error_rate"),
    ({}, "sets no field"),
    ([1, 2], "body"),
])
def test_bad_fault_input_is_a_clear_400(inv_client, body, needle):
    r = inv_client.post("/admin/faults", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]
    assert inv_client.get("/admin/faults", headers=AUTH).json() == {
        "error_ratio": 0.0, "exception_ratio": 0.0, "latency_ms": 0.0, "latency_jitter_ms": 0.0, "outage": False}


def test_non_json_body_is_a_400(inv_client):
    r = inv_client.post("/admin/faults", content=b"error_ratio=1",
                        headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"], r.text


def test_form_post_is_refused_before_auth_or_parsing(inv_client):
    # What a web page can send cross-site without a preflight: refused, nothing changes.
    r = inv_client.post("/admin/faults", content=b"outage=true",
                        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415, r.text
    assert inv_client.get("/admin/faults", headers=AUTH).json()["outage"] is False


def test_error_ratio_latency_outage_and_clear(inv_client, monkeypatch):
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:  # the delay asked for, not wall time
        slept.append(seconds)

    monkeypatch.setattr(faults_module, "asyncio", SimpleNamespace(sleep=record_sleep))
    r = inv_client.post("/admin/faults", json={"error_ratio": 1}, headers=AUTH)
    assert r.status_code == 200 and r.json()["error_ratio"] == 1.0
    assert all(inv_client.get("/api/items").status_code == 500 for _ in range(5))
    assert inv_client.get("/healthz").status_code == 200  # faults touch /api only

    # partial update keeps error_ratio, adds latency
    r = inv_client.post("/admin/faults", json={"error_ratio": 0, "latency_ms": 150, "latency_jitter_ms": 50},
                        headers=AUTH)
    assert r.json() == {"error_ratio": 0.0, "exception_ratio": 0.0, "latency_ms": 150.0, "latency_jitter_ms": 50.0,
                        "outage": False}
    assert all(inv_client.get("/api/items").status_code == 200 for _ in range(20))
    assert len(slept) == 20 and all(0.15 <= s <= 0.2 for s in slept), slept

    inv_client.post("/admin/faults", json={"latency_ms": 0, "latency_jitter_ms": 0, "outage": True}, headers=AUTH)
    r = inv_client.get("/api/items/1")
    assert r.status_code == 503 and "store unavailable" in r.json()["error"]
    assert inv_client.get("/readyz").status_code == 503

    r = inv_client.delete("/admin/faults", headers=AUTH)
    assert r.json() == {"error_ratio": 0.0, "exception_ratio": 0.0, "latency_ms": 0.0, "latency_jitter_ms": 0.0,
                        "outage": False}
    assert inv_client.get("/api/items/1").status_code == 200
    assert inv_client.get("/readyz").status_code == 200


def test_partial_error_ratio_is_roughly_honoured(inv_client):
    inv_client.post("/admin/faults", json={"error_ratio": 0.5}, headers=AUTH)
    codes = [inv_client.get("/api/items/2").status_code for _ in range(200)]
    assert set(codes) == {200, 500}
    assert 50 <= codes.count(500) <= 150  # p(fail) of this bound is ~1e-12


def test_faults_from_env_at_start(monkeypatch):
    monkeypatch.setenv("DEMO_FAULT_ERROR_RATIO", "1")
    monkeypatch.setenv("DEMO_FAULT_LATENCY_MS", "5")
    app = inventory.create_app(load("inventory"), Telemetry("inventory", enabled=False))
    with TestClient(app) as client:
        assert client.get("/api/items").status_code == 500


@pytest.mark.parametrize("env, needle", [
    ({"DEMO_FAULT_ERROR_RATIO": "2"}, "DEMO_FAULT_ERROR_RATIO='2': Input should be less than or equal to 1"),
    ({"DEMO_FAULT_ERROR_RATIO": "lots"}, "DEMO_FAULT_ERROR_RATIO='lots'"),
    ({"DEMO_FAULT_OUTAGE": "maybe"}, "DEMO_FAULT_OUTAGE='maybe'"),
    ({"DEMO_FAULT_LATENCY": "100"}, "unknown variable(s) DEMO_FAULT_LATENCY"),
    ({"DEMO_PORT": "70000"}, "DEMO_PORT='70000'"),
    ({"DEMO_LOG_LEVEL": "LOUD"}, "DEMO_LOG_LEVEL='LOUD'"),
    ({"DEMO_READINESS_INTERVAL_S": "-1"}, "DEMO_READINESS_INTERVAL_S='-1'"),
])
def test_bad_env_stops_the_start_naming_the_variable(monkeypatch, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as exc:
        load("inventory")
    assert needle in str(exc.value)


def test_cli_reports_bad_env_and_exits_2(monkeypatch, capsys):
    from demo_app.cli import main

    monkeypatch.setenv("DEMO_FAULT_ERROR_RATIO", "7")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert main(["inventory"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "DEMO_FAULT_ERROR_RATIO" in err
