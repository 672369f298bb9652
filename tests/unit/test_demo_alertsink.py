"""alert-sink: Alertmanager webhook v4 payloads, Slack messages and email over SMTP in;
malformed ones out with a clear error; what it keeps is bounded and survives a restart."""

import contextlib
import copy
import json
import smtplib
import socket
import threading
from email.message import EmailMessage

import pytest
import requests
from fastapi.testclient import TestClient

from demo_app import alertsink
from demo_app.alertsink import store
from demo_app.settings import AlertSinkSettings
from demo_app.telemetry import Telemetry

from .conftest import LoopbackServer, closed_port

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
            "annotations": {"summary": "shop: 5xx ratio above 5% <script>",
                            "description": "shop answers 5xx <b>often</b>",
                            "runbook_url": "http://localhost:8090/runbooks/DemoHighErrorRate"},
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
# What Alertmanager's slack_config posts (notify/slack: attachments, no blocks).
SLACK = {
    "channel": "#alerts", "username": "Alertmanager",
    "attachments": [{"title": "[FIRING:1] DemoErrorBudgetBurnFast shop", "title_link": "http://am/#/alerts",
                     "text": "*Description:* shop burns its budget\n*Runbook:* http://localhost:8090/runbooks/X",
                     "fallback": "[FIRING:1] DemoErrorBudgetBurnFast", "color": "danger",
                     "footer": "slack-all", "mrkdwn_in": ["text"]}],
}
JSON = {"Content-Type": "application/json"}


def resolved():
    p = copy.deepcopy(FIRING)
    p["status"] = "resolved"
    for a in p["alerts"]:
        a["status"] = "resolved"
        a["endsAt"] = "2026-11-22T20:41:56.014Z"
    return p


def settings(tmp_path, **kw) -> AlertSinkSettings:
    kw.setdefault("store_path", str(tmp_path / "sink.db"))
    kw.setdefault("smtp_port", 0)
    kw.setdefault("runbooks_dir", str(tmp_path / "runbooks"))
    return AlertSinkSettings(**kw)


@pytest.fixture
def sink(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    with TestClient(alertsink.create_app(settings(tmp_path, store_max_notifications=3), tel)) as client:
        yield client, tel


def _value(tel, name, labels=None):
    return tel.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_accepts_alertmanager_payload_and_filters(sink):
    client, tel = sink
    r = client.post("/webhook", content=json.dumps(FIRING), headers=JSON)
    assert r.status_code == 200 and r.json()["accepted"] == 2
    assert client.post("/webhook", json=resolved()).status_code == 200

    all_alerts = client.get("/api/alerts").json()
    assert all_alerts["count"] == 4 and all_alerts["stored_notifications"] == 2
    assert all_alerts["alerts"][0]["status"] == "resolved"  # newest first
    high = client.get("/api/alerts", params={"alertname": "DemoHighErrorRate"}).json()["alerts"]
    assert [a["status"] for a in high] == ["resolved", "firing"]
    firing = client.get("/api/alerts", params={"status": "firing"}).json()["alerts"]
    assert sorted(a["alertname"] for a in firing) == ["DemoHighErrorRate", "DemoNotReady"]
    assert firing[0]["receiver"] == "alert-sink" and firing[0]["labels"]["severity"]
    assert client.get("/api/alerts", params={"status": "bogus"}).status_code == 400

    labels = {"channel": "webhook", "receiver": "alert-sink"}
    assert _value(tel, "alert_sink_notifications_total", {**labels, "status": "firing"}) == 1
    assert _value(tel, "alert_sink_notifications_total", {**labels, "status": "resolved"}) == 1
    assert _value(tel, "alert_sink_alerts_total", {"alertname": "DemoHighErrorRate", "status": "resolved"}) == 1
    assert _value(tel, "alert_sink_stored_notifications") == 2

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "DemoNotReady" in page.text and "&lt;b&gt;often" in page.text and "<b>often" not in page.text
    # Firing and resolved of one group are one row, with the time between them.
    assert page.text.count("data-key='webhook|alert-sink|") == 1 and " s</td>" in page.text
    assert "href='http://localhost:8090/runbooks/DemoHighErrorRate'" in page.text


@pytest.mark.parametrize("raw, reason, needle", [
    (b"{not json", "invalid_json", "not valid JSON"),
    (b"{\"a\": }", "invalid_json", "not valid JSON"),
    (b"[]", "invalid_schema", "v4 webhook"),
    (json.dumps({**FIRING, "version": "3"}).encode(), "unsupported_version", "version"),
    (json.dumps({k: v for k, v in FIRING.items() if k != "alerts"}).encode(), "invalid_schema", "alerts"),
    (json.dumps({**FIRING, "alerts": []}).encode(), "invalid_schema", "alerts"),
    (json.dumps({**FIRING, "status": "pending"}).encode(), "invalid_schema", "status"),
    (json.dumps({**FIRING, "alerts": [{**FIRING["alerts"][0], "labels": {"a": 1}}]}).encode(),
     "invalid_schema", "alerts.0.labels.a"),
    (json.dumps({**FIRING, "alerts": [{**FIRING["alerts"][0], "startsAt": "yesterday"}]}).encode(),
     "invalid_schema", "startsAt"),
    (json.dumps({**FIRING, "receiver": "r" * 5000}).encode(), "invalid_schema", "receiver"),
])
def test_rejects_malformed_payloads(sink, raw, reason, needle):
    client, tel = sink
    r = client.post("/webhook", content=raw, headers=JSON)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"] or needle in json.dumps(r.json().get("details"))
    assert _value(tel, "alert_sink_rejected_total", {"channel": "webhook", "reason": reason}) == 1
    assert client.get("/api/alerts").json()["count"] == 0


@pytest.mark.parametrize("headers, body, status, reason", [
    ({"Content-Type": "text/plain"}, json.dumps(FIRING).encode(), 415, "unsupported_media_type"),
    ({}, b"version=4", 415, "unsupported_media_type"),
    (JSON, b"[" * 200_000 + b"]" * 200_000, 413, "too_large"),
    (JSON, b"[" * 1000 + b"]" * 1000, 400, "too_deep"),
    ({**JSON, "Content-Length": str(10**9)}, b"{}", 413, "too_large"),
    # JSON is UTF-8: in UTF-16 the depth scan would see no bracket, and json.loads would
    # still decode it (900 levels, well past the limit).
    (JSON, ("[" * 900 + "]" * 900).encode("utf-16-le"), 415, "unsupported_media_type"),
    (JSON, json.dumps(FIRING).encode("utf-16"), 415, "unsupported_media_type"),
    ({"Content-Type": "application/json; charset=utf-16"}, json.dumps(FIRING).encode("utf-16-le"), 415,
     "unsupported_media_type"),
    (JSON, b'{"receiver": "\xc3\x28"}', 400, "bad_request"),  # not UTF-8 at all
])
def test_limits_before_parsing(sink, headers, body, status, reason):
    client, tel = sink
    r = client.post("/webhook", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]
    assert _value(tel, "alert_sink_rejected_total", {"channel": "http", "reason": reason}) == 1


def test_oversized_chunked_body_is_refused_while_streaming(sink):
    client, tel = sink

    def chunks():
        for _ in range(64):
            yield b" " * 8192  # 512 KiB in all, no Content-Length

    r = client.post("/webhook", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert _value(tel, "alert_sink_rejected_total", {"channel": "http", "reason": "too_large"}) == 1


def _raw_post(port: int, head: bytes, body_parts) -> tuple[OSError | None, bytes]:
    """POST over a plain socket: send everything, then read the answer to its end.
    Returns (the error sending met, if any; the answer). A client library may retry or
    read early; this is what a plain client sees."""
    sent_error = None
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
            for part in body_parts:
                sock.sendall(part)
        except OSError as exc:
            sent_error = exc
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return sent_error, answer


def test_a_huge_body_gets_a_readable_413_not_a_reset(tmp_path):
    """Over real HTTP: a 10 MB body is read and thrown away, then the JSON error is
    answered. A server that answers and closes with the body unread resets the connection
    under the client while it still sends (behind Docker's port proxy the client then
    sees only the reset)."""
    server = LoopbackServer(alertsink.create_app(settings(tmp_path), Telemetry("alert-sink", enabled=False)))
    size = 10_000_000
    try:
        sized = (f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode()
        chunked = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        piece = b" " * 65536
        for head, parts in ((sized, [piece] * (size // len(piece)) + [b" " * (size % len(piece))]),
                            (chunked, [b"10000\r\n" + piece + b"\r\n"] * 160 + [b"0\r\n\r\n"])):
            sent_error, answer = _raw_post(server.port, head, parts)
            assert sent_error is None, f"the connection broke while the body was sent: {sent_error!r}"
            status, _, rest = answer.partition(b"\r\n")
            assert b" 413 " in status, answer[:300]
            assert b'"error"' in rest and b"limit" in rest, answer[:500]
    finally:
        server.stop()


def test_store_is_bounded_by_count_and_by_bytes(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    s = settings(tmp_path, store_max_notifications=1000, store_max_bytes=64 * 1024, max_body_bytes=16 * 1024,
                 smtp_max_message_bytes=16 * 1024)
    with TestClient(alertsink.create_app(s, tel)) as client:
        for i in range(40):  # ~5 KiB each: 200 KiB sent, 64 KiB kept
            p = copy.deepcopy(FIRING)
            p["alerts"] = [dict(p["alerts"][0], labels={"alertname": f"A{i}"},
                                annotations={"description": "x" * 4000})]
            assert client.post("/webhook", json=p).status_code == 200
        names = [a["alertname"] for a in client.get("/api/alerts").json()["alerts"]]
        assert names[0] == "A39" and 5 <= len(names) < 40, names  # newest kept, oldest dropped
        assert _value(tel, "alert_sink_stored_bytes") <= 64 * 1024
    with TestClient(alertsink.create_app(settings(tmp_path, store_max_notifications=3), tel)) as client:
        client.post("/webhook", json=FIRING)
        assert client.get("/api/alerts").json()["stored_notifications"] == 3


def _group(name: str, status: str = "firing", description: str = "") -> dict:
    """A webhook notification of one alert group (alert name = group)."""
    p = copy.deepcopy(FIRING)
    p["status"] = status
    p["groupKey"] = f'{{}}:{{alertname="{name}"}}'
    p["alerts"] = [dict(p["alerts"][0], status=status, labels={"alertname": name, "severity": "critical"},
                        annotations={"description": description})]
    return p


def test_a_week_of_watchdogs_does_not_crowd_out_real_alerts(tmp_path):
    """One Watchdog every 5 minutes for 7 days (2016 notifications) against a 1,000-row
    bound, with real alerts firing and resolving now and then: every real notification
    is kept, the Watchdog's run keeps its first and newest few, and every eviction is
    counted."""
    tel = Telemetry("alert-sink", enabled=False)
    real: list[int] = []
    with TestClient(alertsink.create_app(settings(tmp_path, store_max_notifications=1000), tel)) as client:
        for i in range(7 * 24 * 12):
            assert client.post("/webhook", json=_group("Watchdog")).status_code == 200
            if i % 100 == 50:  # a real incident: firing, a reminder, resolved
                for status in ("firing", "firing", "resolved"):
                    real.append(client.post("/webhook", json=_group(f"Real{i}", status)).json()["id"])
        held = {n["id"]: n for n in client.get("/api/notifications", params={"limit": 1000}).json()["notifications"]}
    assert set(real) <= set(held), f"{len(set(real) - set(held))} real notifications were evicted"
    watchdogs = sorted(nid for nid, n in held.items() if n["title"] == "Watchdog")
    assert len(watchdogs) == 1 + store.KEEP_REPEATS and watchdogs[0] == 1, watchdogs  # the first, the newest few
    evicted = sum(_value(tel, "alert_sink_evicted_total", {"reason": r}) for r in ("repeat", "count", "bytes"))
    assert evicted == 7 * 24 * 12 + len(real) - len(held), evicted


def test_evictions_by_the_bounds_are_counted_and_answers_say_when_cut(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    with TestClient(alertsink.create_app(settings(tmp_path, store_max_notifications=5), tel)) as client:
        for i in range(8):
            client.post("/webhook", json=_group(f"A{i}"))
        assert _value(tel, "alert_sink_evicted_total", {"reason": "count"}) == 3
        page = client.get("/api/notifications", params={"limit": 2}).json()
        assert page["count"] == 2 and page["truncated"] is True, page
        whole = client.get("/api/notifications", params={"limit": 10}).json()
        assert whole["count"] == 5 and whole["truncated"] is False, whole
        assert client.get("/api/alerts", params={"limit": 3}).json()["truncated"] is True


def test_the_byte_bound_counts_every_column(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    with TestClient(alertsink.create_app(settings(tmp_path), tel)) as client:
        p = _group("Big")
        p["groupKey"] = "{}:" + "g" * 60_000  # a group key is a stored column too
        assert client.post("/webhook", json=p).status_code == 200
        assert _value(tel, "alert_sink_stored_bytes") > 2 * 60_000  # grp, and content carries it again


def test_one_large_notification_does_not_evict_the_others(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    kw = dict(store_max_bytes=128 * 1024, max_body_bytes=128 * 1024, smtp_max_message_bytes=16 * 1024)
    with TestClient(alertsink.create_app(settings(tmp_path, **kw), tel)) as client:
        small = [client.post("/webhook", json=_group(f"S{i}")).json()["id"] for i in range(10)]
        big = client.post("/webhook", json=_group("Big", description="x" * 60_000))
        assert big.status_code == 200
        held = client.get("/api/notifications", params={"limit": 100}).json()["notifications"]
        assert set(small) <= {n["id"] for n in held}, "the large notification evicted the small ones"
        kept = next(n for n in held if n["id"] == big.json()["id"])
        assert "cut" in kept["content"] and kept["alerts"][0]["labels"]["alertname"] == "Big", kept
        assert _value(tel, "alert_sink_stored_bytes") <= 128 * 1024


def test_a_store_smaller_than_one_message_is_refused_at_start(tmp_path, monkeypatch):
    from demo_app.settings import ConfigError, load

    monkeypatch.setenv("DEMO_STORE_MAX_BYTES", str(64 * 1024))  # the default body limit is 256 KiB
    with pytest.raises(ConfigError, match="DEMO_STORE_MAX_BYTES=65536 is below the largest message"):
        load("alert-sink")


def test_too_many_alerts_in_one_notification(sink):
    client, _ = sink
    small = {"status": "firing", "labels": {}, "startsAt": "2026-11-22T20:31:56Z"}
    r = client.post("/webhook", json={**FIRING, "alerts": [small] * 1001})
    assert r.status_code == 400 and "alerts" in r.json()["error"]


def test_notifications_survive_a_restart(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    with TestClient(alertsink.create_app(settings(tmp_path), tel)) as client:
        assert client.post("/webhook", json=FIRING).status_code == 200
        assert client.post("/slack/slack-all", json=SLACK).text == "ok"
    with TestClient(alertsink.create_app(settings(tmp_path), Telemetry("alert-sink", enabled=False))) as client:
        body = client.get("/api/notifications").json()
        assert [n["channel"] for n in body["notifications"]] == ["slack", "webhook"]
        assert body["notifications"][1]["content"]["groupKey"] == FIRING["groupKey"]


def test_metric_labels_from_clients_are_bounded(tmp_path):
    tel = Telemetry("alert-sink", enabled=False)
    with TestClient(alertsink.create_app(settings(tmp_path), tel)) as client:
        for i in range(260):
            p = copy.deepcopy(FIRING)
            p["receiver"] = f"receiver-{i}"
            p["alerts"] = [dict(p["alerts"][0], labels={"alertname": f"Name{i}"})]
            assert client.post("/webhook", json=p).status_code == 200
        text = client.get("/metrics").text
    receivers = {line.split('receiver="')[1].split('"')[0] for line in text.splitlines()
                 if line.startswith("alert_sink_notifications_total{")}
    names = {line.split('alertname="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("alert_sink_alerts_total{")}
    assert len(receivers) == 21 and "other" in receivers, len(receivers)
    assert len(names) == 201 and "other" in names, len(names)


# ---- Slack ---------------------------------------------------------------------------

def test_slack_message_is_kept_and_answered_ok(sink):
    client, tel = sink
    r = client.post("/slack/slack-all", json=SLACK)
    assert r.status_code == 200 and r.text == "ok" and r.headers["content-type"].startswith("text/plain")
    r = client.post("/slack/slack-all", json={"text": "plain", "blocks": [{"type": "section"}]})
    assert r.text == "ok"
    n = client.get("/api/notifications", params={"channel": "slack"}).json()["notifications"]
    assert [x["status"] for x in n] == ["firing", "firing"]
    assert n[1]["receiver"] == "slack-all" and n[1]["group"] == "DemoErrorBudgetBurnFast shop"
    assert n[1]["content"]["attachments"][0]["color"] == "danger"
    assert n[0]["content"]["blocks"] == [{"type": "section"}]


@pytest.mark.parametrize("path, body, reason", [
    ("/slack/slack-all", b"{", "invalid_json"),
    ("/slack/slack-all", json.dumps({"attachments": "many"}).encode(), "invalid_schema"),
    ("/slack/slack-all", b"{}", "invalid_schema"),
])
def test_slack_malformed_is_a_400(sink, path, body, reason):
    client, tel = sink
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 400 and r.json()["error"], r.text
    assert _value(tel, "alert_sink_rejected_total", {"channel": "slack", "reason": reason}) == 1
    assert client.get("/api/notifications").json()["count"] == 0


def test_slack_receiver_name_is_bounded(sink):
    client, _ = sink
    assert client.post("/slack/" + "x" * 200, json=SLACK).status_code == 400
    assert client.post("/slack/a%2Fb", json=SLACK).status_code in (400, 404)


# ---- SMTP ------------------------------------------------------------------------------

def _email(subject="[FIRING:1] DemoErrorBudgetBurnFast shop", status="firing", html=True) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "alertmanager@stack.local"
    m["To"] = "oncall@example.com"
    m["Subject"] = subject
    m["X-Alertmanager-Receiver"] = "email-critical"
    m["X-Alertmanager-Status"] = status
    m.set_content("Description: shop burns its budget\nRunbook: http://localhost:8090/runbooks/X\n")
    if html:
        m.add_alternative("<p>shop burns its <b>budget</b></p><script>alert(1)</script>", subtype="html")
    return m


@pytest.fixture
def smtp_sink(tmp_path):
    port = closed_port()
    tel = Telemetry("alert-sink", enabled=False)
    s = settings(tmp_path, smtp_port=port, smtp_max_recipients=3, smtp_max_message_bytes=64 * 1024,
                 smtp_max_sessions=2)
    server = LoopbackServer(alertsink.create_app(s, tel))
    try:
        yield server, port, tel
    finally:
        server.stop()


def test_email_is_parsed_and_kept(smtp_sink):
    server, port, tel = smtp_sink
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(_email(), to_addrs=["oncall@example.com", "lead@example.com"])
        smtp.send_message(_email("[RESOLVED] DemoErrorBudgetBurnFast shop", "resolved"))
    import requests

    n = requests.get(f"{server.url}/api/notifications", params={"channel": "email"}, timeout=10).json()
    latest, first = n["notifications"]
    assert first["receiver"] == "email-critical" and first["status"] == "firing"
    assert first["content"]["rcpt_to"] == ["oncall@example.com", "lead@example.com"]
    assert "Runbook: http://localhost:8090/runbooks/X" in first["content"]["text"]
    assert "<b>budget</b>" in first["content"]["html"]
    assert latest["status"] == "resolved" and latest["group"] == first["group"]
    page = requests.get(server.url, timeout=10).text
    assert "sandbox" in page and "<script>alert(1)" not in page  # HTML shown sandboxed, escaped
    assert page.count("data-key='email|email-critical|") == 1


def test_smtp_limits_and_malformed_mime(smtp_sink):
    _, port, tel = smtp_sink
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("a@b")
        for i in range(3):
            assert smtp.rcpt(f"r{i}@x")[0] == 250
        assert smtp.rcpt("one-too-many@x")[0] == 452
        smtp.rset()
        big = _email(html=False)
        big.set_content("x" * 100_000)
        # Refused at MAIL FROM (SIZE= announced by smtplib), or at the end of DATA.
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as exc:
            smtp.sendmail("a@b", ["c@d"], big.as_bytes())
        assert exc.value.smtp_code == 552
        smtp.rset()
        broken = (b"Subject: broken\r\nContent-Type: multipart/alternative\r\n\r\n"
                  b"no boundary here\r\n")
        with pytest.raises(smtplib.SMTPDataError) as exc:
            smtp.sendmail("a@b", ["c@d"], broken)
        assert exc.value.smtp_code == 554
        with pytest.raises(smtplib.SMTPDataError) as exc:
            smtp.sendmail("a@b", ["c@d"], b"Subject:\r\n\r\nno subject")
        assert exc.value.smtp_code == 554
    rejected = {r: _value(tel, "alert_sink_rejected_total", {"channel": "email", "reason": r})
                for r in ("too_many_recipients", "malformed_email")}
    assert rejected == {"too_many_recipients": 1, "malformed_email": 2}


def _nested_multipart(depth: int) -> bytes:
    """A message of `depth` multiparts each inside the other (~66 bytes per level)."""
    body = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for i in range(depth):
        b = f"b{i}".encode()
        body = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + body
                + b"\r\n--" + b + b"--\r\n")
    return b"Subject: [FIRING:1] X\r\nMIME-Version: 1.0\r\n" + body


def test_too_many_mime_parts_are_refused_before_parsing(smtp_sink):
    _, port, tel = smtp_sink
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            smtp.sendmail("a@b", ["c@d"], _nested_multipart(800))  # ~52 KiB, under the size limit
    assert exc.value.smtp_code == 554 and b"MIME parts" in exc.value.smtp_error
    assert _value(tel, "alert_sink_rejected_total", {"channel": "email", "reason": "malformed_email"}) == 1


def test_a_slow_email_does_not_hold_up_the_http_side(smtp_sink, monkeypatch):
    """Parsing runs in a worker thread: while one message is being parsed (here: held in
    the parser until released), the sink still answers HTTP."""
    from demo_app.alertsink import smtp as smtp_module

    server, port, _ = smtp_sink
    entered, release = threading.Event(), threading.Event()
    real = smtp_module.parse_email

    def held(*args):
        entered.set()
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(smtp_module, "parse_email", held)
    sender = threading.Thread(target=lambda: smtplib.SMTP("127.0.0.1", port, timeout=60).send_message(_email()))
    sender.start()
    try:
        assert entered.wait(30), "the message never reached the parser"
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        release.set()
        sender.join(30)


def test_smtp_sessions_are_bounded(smtp_sink):
    _, port, tel = smtp_sink
    held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for _ in range(2)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            assert extra.recv(100).startswith(b"421")
        with pytest.raises(smtplib.SMTPConnectError) as exc:
            smtplib.SMTP("127.0.0.1", port, timeout=10)
        assert exc.value.smtp_code == 421
    finally:
        for s in held:
            s.quit()
    assert _value(tel, "alert_sink_rejected_total", {"channel": "email", "reason": "too_many_sessions"}) == 2
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:  # free again
        assert smtp.noop()[0] == 250


# ---- runbooks ---------------------------------------------------------------------------

def test_runbooks_are_served_as_html(tmp_path):
    rb = tmp_path / "runbooks"
    rb.mkdir()
    (rb / "TargetDown.md").write_text("# TargetDown\n\nSee [the other](Other.md).\n\n<script>x</script>\n"
                                      "| a | b |\n|---|---|\n| 1 | 2 |\n")
    with TestClient(alertsink.create_app(settings(tmp_path), Telemetry("alert-sink", enabled=False))) as c:
        r = c.get("/runbooks/TargetDown")
        assert r.status_code == 200 and "<h1>TargetDown</h1>" in r.text
        assert 'href="Other"' in r.text and "<table>" in r.text
        assert "<script>x" not in r.text and "&lt;script&gt;" in r.text
        assert c.get("/runbooks/TargetDown.md").status_code == 200
        assert "TargetDown" in c.get("/runbooks/").text
        for bad in ("Nope", "..%2F..%2Fetc%2Fpasswd", "a.b"):
            r = c.get(f"/runbooks/{bad}")
            assert r.status_code == 404 and r.json()["error"], bad
