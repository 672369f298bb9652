"""alert-sink: Alertmanager webhook v4 payloads in, malformed ones out with a 400."""

import copy
import json

import pytest
from fastapi.testclient import TestClient

from demo_app import alertsink
from demo_app.telemetry import Telemetry

# The body Alertmanager's webhook notifier sends (notify/webhook.Message, version 4):
# field names, nesting and the zero endsAt exactly as on the wire.
FIRING = {
    "receiver": "alert-sink",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DemoHighErrorRate", "service": "shop", "severity": "critical",
                       "job": "shop", "instance": "shop:8080"},
            "annotations": {"summary": "shop: 5xx ratio above 5% <script>", "runbook_url": "docs/runbooks/x.md"},
            "startsAt": "2026-11-22T20:31:56.014Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...&g0.tab=1",
            "fingerprint": "948c667b1fc76492",
        },
        {
            "status": "firing",
            "labels": {"alertname": "DemoNotReady", "service": "inventory", "severity": "warning"},
            "annotations": {"summary": "inventory not ready"},
            "startsAt": "2026-11-22T20:32:11.5Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "0a1b2c3d4e5f6071",
        },
    ],
    "groupLabels": {"alertname": "DemoHighErrorRate"},
    "commonLabels": {"severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": "{}:{alertname=\"DemoHighErrorRate\"}",
    "truncatedAlerts": 0,
}


def resolved():
    p = copy.deepcopy(FIRING)
    p["status"] = "resolved"
    p["alerts"] = p["alerts"][:1]
    p["alerts"][0]["status"] = "resolved"
    p["alerts"][0]["endsAt"] = "2026-11-22T20:41:56.014Z"
    return p


@pytest.fixture
def sink():
    tel = Telemetry("alert-sink", enabled=False)
    with TestClient(alertsink.create_app(tel, capacity=3)) as client:
        yield client, tel


def _value(tel, name, labels=None):
    return tel.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_accepts_alertmanager_payload_and_filters(sink):
    client, tel = sink
    r = client.post("/webhook", content=json.dumps(FIRING), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 2
    assert client.post("/webhook", json=resolved()).status_code == 200

    all_alerts = client.get("/api/alerts").json()
    assert all_alerts["count"] == 3 and all_alerts["stored_notifications"] == 2
    assert all_alerts["alerts"][0]["status"] == "resolved"  # newest first
    high = client.get("/api/alerts", params={"alertname": "DemoHighErrorRate"}).json()["alerts"]
    assert [a["status"] for a in high] == ["resolved", "firing"]
    firing = client.get("/api/alerts", params={"status": "firing"}).json()["alerts"]
    assert sorted(a["alertname"] for a in firing) == ["DemoHighErrorRate", "DemoNotReady"]
    both = client.get("/api/alerts", params={"alertname": "DemoNotReady", "status": "resolved"}).json()
    assert both["count"] == 0
    assert firing[0]["receiver"] == "alert-sink" and firing[0]["labels"]["severity"]
    assert client.get("/api/alerts", params={"status": "bogus"}).status_code == 400

    assert _value(tel, "alert_sink_notifications_total", {"receiver": "alert-sink", "status": "firing"}) == 1
    assert _value(tel, "alert_sink_notifications_total", {"receiver": "alert-sink", "status": "resolved"}) == 1
    assert _value(tel, "alert_sink_alerts_total", {"alertname": "DemoHighErrorRate", "status": "firing"}) == 1
    assert _value(tel, "alert_sink_alerts_total", {"alertname": "DemoHighErrorRate", "status": "resolved"}) == 1
    assert _value(tel, "alert_sink_stored_notifications") == 2

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "DemoNotReady" in page.text and "&lt;script&gt;" in page.text and "<script>" not in page.text


@pytest.mark.parametrize("raw, reason, needle", [
    (b"{not json", "invalid_json", "not valid JSON"),
    (b"\xff\xfe", "invalid_json", "not valid JSON"),
    (b"[]", "invalid_schema", "v4 webhook"),
    (json.dumps({**FIRING, "version": "3"}).encode(), "unsupported_version", "version"),
    (json.dumps({k: v for k, v in FIRING.items() if k != "alerts"}).encode(), "invalid_schema", "alerts"),
    (json.dumps({**FIRING, "alerts": []}).encode(), "invalid_schema", "alerts"),
    (json.dumps({**FIRING, "status": "pending"}).encode(), "invalid_schema", "status"),
    (json.dumps({**FIRING, "alerts": [{**FIRING["alerts"][0], "labels": {"a": 1}}]}).encode(),
     "invalid_schema", "alerts.0.labels.a"),
    (json.dumps({**FIRING, "alerts": [{**FIRING["alerts"][0], "startsAt": "yesterday"}]}).encode(),
     "invalid_schema", "startsAt"),
])
def test_rejects_malformed_payloads(sink, raw, reason, needle):
    client, tel = sink
    r = client.post("/webhook", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"] or needle in json.dumps(r.json().get("details"))
    assert _value(tel, "alert_sink_rejected_total", {"reason": reason}) == 1
    assert client.get("/api/alerts").json()["count"] == 0


def test_store_is_bounded(sink):
    client, tel = sink
    for i in range(5):
        p = copy.deepcopy(FIRING)
        p["alerts"] = [dict(p["alerts"][0], labels={"alertname": f"A{i}"})]
        assert client.post("/webhook", json=p).status_code == 200
    names = [a["alertname"] for a in client.get("/api/alerts").json()["alerts"]]
    assert names == ["A4", "A3", "A2"]  # capacity 3, oldest dropped
    assert _value(tel, "alert_sink_stored_notifications") == 3
    assert _value(tel, "alert_sink_notifications_total", {"receiver": "alert-sink", "status": "firing"}) == 5


def test_oversized_body_is_refused(sink):
    client, tel = sink
    r = client.post("/webhook", content=b" " * (alertsink.MAX_BODY_BYTES + 1))
    assert r.status_code == 413
    assert _value(tel, "alert_sink_rejected_total", {"reason": "too_large"}) == 1
