"""Readiness checks the downstream and the store, and demo_readiness follows in the
background without anyone calling /readyz."""

import time

from fastapi.testclient import TestClient

from demo_app import inventory, shop
from demo_app.settings import InventorySettings, ShopSettings
from demo_app.telemetry import Telemetry

from .conftest import LoopbackServer, closed_port


def _gauge(tel, check):
    return tel.metrics.registry.get_sample_value("demo_readiness", {"service": tel.service, "check": check})


def test_shop_not_ready_when_inventory_is_down():
    tel = Telemetry("shop", enabled=False)
    settings = ShopSettings(inventory_url=f"http://127.0.0.1:{closed_port()}",
                        downstream_timeout_s=1, readiness_interval_s=0.1)
    with TestClient(shop.create_app(settings, tel)) as client:
        deadline = time.monotonic() + 5
        while _gauge(tel, "inventory") != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gauge(tel, "inventory") == 0  # set by the background loop
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "not ready"
        assert body["checks"]["inventory"]["status"] == "fail"
        assert "ConnectError" in body["checks"]["inventory"]["error"] or "unreachable" in body["checks"]["inventory"]["error"]
        assert client.get("/healthz").status_code == 200  # liveness is not readiness
        r = client.get("/api/products")
        assert r.status_code == 503 and "inventory unreachable" in r.json()["error"]


def test_shop_ready_follows_inventory_state():
    inv_tel = Telemetry("inventory", enabled=False)
    inv = LoopbackServer(inventory.create_app(InventorySettings(), inv_tel))
    try:
        tel = Telemetry("shop", enabled=False)
        settings = ShopSettings(inventory_url=inv.url, readiness_interval_s=0.1)
        with TestClient(shop.create_app(settings, tel)) as client:
            r = client.get("/readyz")
            assert r.status_code == 200 and r.json()["checks"]["inventory"]["status"] == "ok"
            assert _gauge(tel, "inventory") == 1
            inv.stop()
            deadline = time.monotonic() + 5
            while _gauge(tel, "inventory") != 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _gauge(tel, "inventory") == 0
            assert client.get("/readyz").status_code == 503
    finally:
        inv.stop()


def test_inventory_readiness_checks_the_store():
    tel = Telemetry("inventory", enabled=False)
    app = inventory.create_app(InventorySettings(readiness_interval_s=0.1), tel)
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 200 and list(r.json()["checks"]) == ["store"]
        app.state.store.close()  # the store really goes away
        r = client.get("/readyz")
        assert r.status_code == 503 and "ProgrammingError" in r.json()["checks"]["store"]["error"]
        assert _gauge(tel, "store") == 0
