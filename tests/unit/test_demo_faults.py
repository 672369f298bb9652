"""The fault switch: auth, validation with clear 400s, and its effect on behaviour."""

import time

import pytest
from fastapi.testclient import TestClient

from demo_app import inventory
from demo_app.config import Settings
from demo_app.faults import FaultError, Faults
from demo_app.telemetry import Telemetry

from .conftest import ADMIN_TOKEN, AUTH


@pytest.fixture
def inv_client():
    tel = Telemetry("inventory", enabled=False)
    app = inventory.create_app(Settings(role="inventory", admin_token=ADMIN_TOKEN), tel)
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
    app = inventory.create_app(Settings(role="inventory", admin_token=""), Telemetry("inventory", enabled=False))
    with TestClient(app) as client:
        r = client.get("/admin/faults", headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "DEMO_ADMIN_TOKEN" in r.json()["error"]


@pytest.mark.parametrize("body, needle", [
    ({"error_ratio": 1.5}, "error_ratio"),
    ({"error_ratio": -0.1}, "error_ratio"),
    ({"error_ratio": "0.5"}, "error_ratio"),
    ({"error_ratio": True}, "error_ratio"),
    ({"latency_ms": 10001}, "latency_ms"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"latency_jitter_ms": 20000}, "latency_jitter_ms"),
    ({"outage": "yes"}, "outage"),
    ({"outage": 1}, "outage"),
    ({"error_rate": 0.5}, "error_rate"),
    ({}, "sets no field"),
    ([1, 2], "JSON object"),
])
def test_bad_fault_input_is_a_clear_400(inv_client, body, needle):
    r = inv_client.post("/admin/faults", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]
    assert inv_client.get("/admin/faults", headers=AUTH).json() == {
        "error_ratio": 0.0, "latency_ms": 0.0, "latency_jitter_ms": 0.0, "outage": False}


def test_non_json_body_is_a_400(inv_client):
    r = inv_client.post("/admin/faults", content=b"error_ratio=1", headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_error_ratio_latency_outage_and_clear(inv_client):
    r = inv_client.post("/admin/faults", json={"error_ratio": 1}, headers=AUTH)
    assert r.status_code == 200 and r.json()["error_ratio"] == 1.0
    assert all(inv_client.get("/api/items").status_code == 500 for _ in range(5))
    assert inv_client.get("/healthz").status_code == 200  # faults touch /api only

    # partial update keeps error_ratio, adds latency
    r = inv_client.post("/admin/faults", json={"error_ratio": 0, "latency_ms": 150, "latency_jitter_ms": 50},
                        headers=AUTH)
    assert r.json() == {"error_ratio": 0.0, "latency_ms": 150.0, "latency_jitter_ms": 50.0, "outage": False}
    t0 = time.perf_counter()
    assert inv_client.get("/api/items").status_code == 200
    assert 0.15 <= time.perf_counter() - t0 < 2

    inv_client.post("/admin/faults", json={"latency_ms": 0, "latency_jitter_ms": 0, "outage": True}, headers=AUTH)
    r = inv_client.get("/api/items/1")
    assert r.status_code == 503 and "store unavailable" in r.json()["error"]
    assert inv_client.get("/readyz").status_code == 503

    r = inv_client.delete("/admin/faults", headers=AUTH)
    assert r.json() == {"error_ratio": 0.0, "latency_ms": 0.0, "latency_jitter_ms": 0.0, "outage": False}
    assert inv_client.get("/api/items/1").status_code == 200
    assert inv_client.get("/readyz").status_code == 200


def test_partial_error_ratio_is_roughly_honoured(inv_client):
    inv_client.post("/admin/faults", json={"error_ratio": 0.5}, headers=AUTH)
    codes = [inv_client.get("/api/items/2").status_code for _ in range(200)]
    assert set(codes) == {200, 500}
    assert 50 <= codes.count(500) <= 150  # p(fail) of this bound is ~1e-12


def test_faults_from_env_at_start():
    settings = Settings(role="inventory", fault_env={"DEMO_FAULT_ERROR_RATIO": "1", "DEMO_FAULT_LATENCY_MS": "5"})
    app = inventory.create_app(settings, Telemetry("inventory", enabled=False))
    with TestClient(app) as client:
        assert client.get("/api/items").status_code == 500


@pytest.mark.parametrize("env, needle", [
    ({"DEMO_FAULT_ERROR_RATIO": "2"}, "error_ratio"),
    ({"DEMO_FAULT_ERROR_RATIO": "lots"}, "not a number"),
    ({"DEMO_FAULT_OUTAGE": "maybe"}, "true or false"),
    ({"DEMO_FAULT_LATENCY": "100"}, "unknown fault variable"),
])
def test_bad_fault_env_stops_the_start(env, needle):
    with pytest.raises(FaultError, match=needle):
        Faults().update_from_env(env)


def test_cli_reports_bad_env_and_exits_2(monkeypatch, capsys):
    from demo_app.cli import main

    monkeypatch.setenv("DEMO_FAULT_ERROR_RATIO", "7")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert main(["inventory"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "error_ratio" in err
