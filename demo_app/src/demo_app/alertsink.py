"""alert-sink: an Alertmanager webhook receiver (payload version 4) that keeps the
last N notifications in memory and shows them as JSON and as a small HTML page."""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import logging
import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import env_int
from .telemetry import Telemetry, service_var

log = logging.getLogger("demo_app.alert_sink")
MAX_BODY_BYTES = 1 << 20


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class Notification(BaseModel):
    """https://prometheus.io/docs/alerting/latest/configuration/#webhook_config"""

    model_config = ConfigDict(extra="allow")
    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(min_length=1)


class NotificationStore:
    """Bounded: the oldest notification goes when a new one arrives at capacity."""

    def __init__(self, capacity: int):
        self._items: deque[dict] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.capacity = capacity

    def add(self, n: Notification) -> dict:
        entry = {
            "id": next(self._ids),
            "received_at": datetime.now(timezone.utc).isoformat(),
            "notification": n.model_dump(mode="json"),
        }
        with self._lock:
            self._items.append(entry)
        return entry

    def __len__(self) -> int:
        return len(self._items)

    def alerts(self, alertname: str | None = None, status: str | None = None, limit: int = 500) -> list[dict]:
        """Alerts, newest first, each with the notification it came in."""
        with self._lock:
            entries = list(self._items)
        out = []
        for e in reversed(entries):
            n = e["notification"]
            for a in n["alerts"]:
                if alertname and a["labels"].get("alertname") != alertname:
                    continue
                if status and a["status"] != status:
                    continue
                out.append({
                    "notification_id": e["id"], "received_at": e["received_at"],
                    "receiver": n["receiver"], "group_key": n["groupKey"],
                    "alertname": a["labels"].get("alertname", ""), **a,
                })
                if len(out) >= limit:
                    return out
        return out


def _page(alerts: list[dict], stored: int, capacity: int) -> str:
    rows = "\n".join(
        "<tr class='{s}'><td>{t}</td><td>{s}</td><td>{n}</td><td>{sev}</td><td>{summ}</td><td>{lab}</td></tr>".format(
            t=html.escape(a["received_at"]), s=html.escape(a["status"]), n=html.escape(a["alertname"]),
            sev=html.escape(a["labels"].get("severity", "")),
            summ=html.escape(a["annotations"].get("summary", "")),
            lab=html.escape(", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))),
        )
        for a in alerts
    ) or "<tr><td colspan='6'>No notifications yet.</td></tr>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>alert-sink</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}tr.firing td:nth-child(2){{color:#b00}}
tr.resolved td:nth-child(2){{color:#070}}</style></head>
<body><h1>alert-sink</h1>
<p>{stored} of at most {capacity} notifications kept. JSON: <a href="api/alerts">/api/alerts</a>
(filters: <code>?alertname=</code>, <code>?status=firing|resolved</code>).</p>
<table><tr><th>received</th><th>status</th><th>alertname</th><th>severity</th><th>summary</th><th>labels</th></tr>
{rows}
</table></body></html>"""


def create_app(telemetry: Telemetry | None = None, capacity: int | None = None) -> FastAPI:
    telemetry = telemetry or Telemetry("alert-sink")
    m = telemetry.metrics
    capacity = capacity or env_int("DEMO_ALERT_SINK_MAX_NOTIFICATIONS", 200, 1, 100_000)
    store = NotificationStore(capacity)
    m.stored.set(0)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        log.info("alert-sink starting", extra={"capacity": capacity})
        yield
        telemetry.shutdown()

    app = FastAPI(title="alert-sink", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    def reject(reason: str, message: str, status: int = 400, details: Any = None) -> JSONResponse:
        m.rejected.labels(reason).inc()
        log.warning("webhook rejected: %s", message, extra={"reason": reason})
        body = {"error": message}
        if details is not None:
            body["details"] = details
        return JSONResponse(body, status_code=status)

    @app.post("/webhook")
    async def webhook(request: Request):
        token = service_var.set(telemetry.service)
        try:
            raw = await request.body()
            if len(raw) > MAX_BODY_BYTES:
                return reject("too_large", f"body larger than {MAX_BODY_BYTES} bytes", 413)
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                return reject("invalid_json", f"body is not valid JSON: {exc}")
            if isinstance(data, dict) and "version" in data and data["version"] != "4":
                return reject("unsupported_version",
                              f"webhook payload version {data['version']!r} is not supported (expected \"4\")")
            try:
                n = Notification.model_validate(data)
            except ValidationError as exc:
                details = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                           for e in exc.errors()]
                summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
                return reject("invalid_schema", f"not an Alertmanager v4 webhook payload: {summary}", 400, details)
            entry = store.add(n)
            m.stored.set(len(store))
            m.notifications.labels(n.receiver, n.status).inc()
            for a in n.alerts:
                m.alerts.labels(a.labels.get("alertname", ""), a.status).inc()
            log.info(
                "notification %s from %s: %d alert(s) %s",
                entry["id"], n.receiver, len(n.alerts), n.status,
                extra={"receiver": n.receiver, "status": n.status, "group_key": n.groupKey,
                       "alertnames": sorted({a.labels.get("alertname", "") for a in n.alerts}),
                       "alerts_count": len(n.alerts)},
            )
            return {"accepted": len(n.alerts), "id": entry["id"]}
        finally:
            service_var.reset(token)

    @app.get("/api/alerts")
    async def api_alerts(alertname: str | None = None, status: str | None = None, limit: int = 500):
        if status not in (None, "firing", "resolved"):
            return JSONResponse({"error": "status must be firing or resolved"}, status_code=400)
        if not 1 <= limit <= 10_000:
            return JSONResponse({"error": "limit must be within [1, 10000]"}, status_code=400)
        alerts = store.alerts(alertname, status, limit)
        return {"alerts": alerts, "count": len(alerts), "stored_notifications": len(store)}

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return _page(store.alerts(limit=200), len(store), capacity)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "service": telemetry.service}

    @app.get("/readyz")
    async def readyz():
        return {"status": "ready", "service": telemetry.service,
                "checks": {"store": {"status": "ok", "stored": len(store), "capacity": capacity}}}

    @app.get("/metrics")
    async def metrics(request: Request):
        body, content_type = m.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    if telemetry.enabled:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider,
                                           excluded_urls="healthz,readyz,metrics",
                                           exclude_spans=["receive", "send"])
    return app
