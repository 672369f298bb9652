"""The alert sink's HTTP side (FastAPI) and the SMTP listener's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from ..app_base import new_app
from ..errors import ErrorBody, error_response, validation_details
from ..settings import AlertSinkSettings
from ..telemetry import Telemetry, service_var
from . import page
from .models import Notification, SlackMessage
from .runbooks import Runbooks
from .smtp import Handler, server_factory
from .store import Entry, NotificationStore, status_of_title

log = logging.getLogger("demo_app.alert_sink")
Channel = Literal["webhook", "email", "slack"]
# A Slack incoming-webhook URL path ends in a name: /slack/<receiver> here.
ReceiverName = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
HTML = {200: {"content": {"text/html": {}}, "description": "an HTML page"}}
# What a page or API response reads from the store at most (see __init__'s arithmetic).
RESPONSE_MAX_BYTES = 1024 * 1024


def _alert_dict(a) -> dict:
    d = a.model_dump(mode="json", include={"status", "labels", "annotations", "startsAt", "endsAt",
                                           "generatorURL", "fingerprint"})
    d["alertname"] = a.labels.get("alertname", "")
    return d


def create_app(settings: AlertSinkSettings, telemetry: Telemetry | None = None) -> FastAPI:
    telemetry = telemetry or Telemetry("alert-sink")
    m = telemetry.metrics
    runbooks = Runbooks(settings.runbooks_dir)

    def store() -> NotificationStore:  # opened by the lifespan
        return app.state.store

    def stored_gauges() -> None:
        m.stored.set(store().count)
        m.stored_bytes.set(store().bytes)

    def keep(entry: Entry) -> int:
        new_id = store().add(entry)
        stored_gauges()
        m.notifications.labels(entry.channel, m.receivers.value(entry.receiver), entry.status).inc()
        for a in entry.alerts:
            m.alerts.labels(m.alertnames.value(a.get("alertname", "")), a["status"]).inc()
        log.info("notification %s via %s (%s): %s %s", new_id, entry.channel, entry.receiver, entry.status,
                 entry.title, extra={"channel": entry.channel, "receiver": entry.receiver,
                                     "status": entry.status, "alerts_count": len(entry.alerts)})
        return new_id

    def rejected(channel: str):
        def count(reason: str) -> None:
            m.rejected.labels(channel, reason).inc()
        return count

    def refuse(channel: str, reason: str, status: int, message: str, details=None):
        rejected(channel)(reason)
        log.warning("%s refused: %s", channel, message, extra={"reason": reason})
        return error_response(status, message, details)

    def evicted(reason: str, n: int) -> None:
        m.evicted.labels(reason).inc(n)
        log.info("evicted %d notification(s) from the store (%s)", n, reason, extra={"reason": reason})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.store = NotificationStore(settings.store_path, settings.store_max_notifications,
                                            settings.store_max_bytes, on_evict=evicted)
        stored_gauges()
        smtp = None
        if settings.smtp_port:
            handler = Handler(keep, rejected("email"), settings.smtp_max_recipients)
            factory = server_factory(handler, hostname="alert-sink", max_message_bytes=settings.smtp_max_message_bytes,
                                     max_sessions=settings.smtp_max_sessions, on_reject=rejected("email"))
            smtp = await asyncio.get_running_loop().create_server(factory, settings.host, settings.smtp_port)
        log.info("alert-sink starting", extra={"stored": store().count, "smtp_port": settings.smtp_port})
        try:
            yield
        finally:
            if smtp is not None:
                smtp.close()
                await smtp.wait_closed()
            store().close()
            telemetry.shutdown()

    app = new_app("alert-sink", lifespan, settings, telemetry, on_reject=rejected("http"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        """Invalid payloads: a 400 in the common shape, counted by channel and reason."""
        channel = "slack" if request.url.path.startswith("/slack/") else "webhook"
        errors = exc.errors()
        details = validation_details(errors)
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        if any(e.get("type") == "json_invalid" for e in errors):
            return refuse(channel, "invalid_json", 400, f"body is not valid JSON: {summary}")
        if channel == "webhook" and any(tuple(e.get("loc", ())) == ("body", "version") for e in errors):
            return refuse(channel, "unsupported_version", 400,
                          'webhook payload version is not supported (expected "4")', details)
        what = "a Slack message payload" if channel == "slack" else "an Alertmanager v4 webhook payload"
        return refuse(channel, "invalid_schema", 400, f"not {what}: {summary}", details)

    @app.post("/webhook")
    async def webhook(n: Notification):
        """Alertmanager webhook_config (payload version 4)."""
        token = service_var.set(telemetry.service)
        try:
            alerts = [_alert_dict(a) for a in n.alerts]
            names = sorted({a["alertname"] for a in alerts} - {""})
            common = n.commonLabels.get("service", "")
            title = f"{', '.join(names)}{f' ({common})' if common else ''}"
            new_id = keep(Entry("webhook", n.receiver, n.status, n.groupKey, title, alerts,
                                n.model_dump(mode="json")))
            return {"accepted": len(n.alerts), "id": new_id}
        finally:
            service_var.reset(token)

    @app.post("/slack/{receiver}",
              responses={200: {"content": {"text/plain": {}}, "description": "`ok`, as Slack answers"}})
    async def slack(receiver: ReceiverName, msg: SlackMessage):
        """A Slack incoming webhook: answers `ok` as Slack does (Alertmanager checks it)."""
        title = (msg.attachments[0].title if msg.attachments else "") or msg.text.split("\n", 1)[0]
        status, group = status_of_title(title)
        keep(Entry("slack", receiver, status or "firing", group[:1024], title[:1024], [],
                   msg.model_dump(mode="json", exclude_defaults=True)))
        return PlainTextResponse("ok")

    @app.get("/api/notifications")
    async def api_notifications(channel: Channel | None = None,
                                status: Literal["firing", "resolved"] | None = None,
                                receiver: Annotated[str | None, Query(max_length=256)] = None,
                                limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        got = store().notifications(channel=channel, status=status, receiver=receiver, limit=limit,
                                    max_bytes=RESPONSE_MAX_BYTES)
        return {"notifications": got.items, "count": len(got.items), "truncated": got.truncated,
                "stored_notifications": store().count}

    @app.get("/api/alerts")
    async def api_alerts(alertname: Annotated[str | None, Query(max_length=256)] = None,
                         status: Literal["firing", "resolved"] | None = None,
                         limit: Annotated[int, Query(ge=1, le=10_000)] = 500):
        """Alerts from webhook notifications, newest first, each with its notification."""
        out = []
        got = store().notifications(channel="webhook", limit=limit, max_bytes=RESPONSE_MAX_BYTES)
        for n in got.items:
            for a in n["alerts"]:
                if (alertname and a.get("alertname") != alertname) or (status and a.get("status") != status):
                    continue
                out.append({"notification_id": n["id"], "received_at": n["received_at"],
                            "receiver": n["receiver"], "group_key": n["group"], **a})
        truncated = got.truncated or len(out) > limit
        out = out[:limit]
        return {"alerts": out, "count": len(out), "truncated": truncated, "stored_notifications": store().count}

    def notifications_for_page() -> list[dict]:
        return store().notifications(limit=300, max_bytes=RESPONSE_MAX_BYTES).items

    @app.get("/", responses=HTML)
    async def index():
        return HTMLResponse(page.page(notifications_for_page(), store().count, store().max_notifications,
                                      store().bytes, store().max_bytes), headers=PAGE_HEADERS)

    @app.get("/rows", responses=HTML)
    async def rows():
        return HTMLResponse(page.rows(notifications_for_page()), headers=PAGE_HEADERS)

    @app.get("/static/page.js", response_class=Response,
             responses={200: {"content": {"text/javascript": {}}, "description": "the page's script"}})
    async def page_js():
        return Response(page.SCRIPT, media_type="text/javascript")

    @app.get("/runbooks", response_class=RedirectResponse, status_code=307)
    async def runbooks_redirect():
        return RedirectResponse("runbooks/")

    @app.get("/runbooks/", responses=HTML)
    async def runbook_index():
        return HTMLResponse(runbooks.index(), headers=PAGE_HEADERS)

    @app.get("/runbooks/{name}", responses={**HTML, 404: {"model": ErrorBody}})
    async def runbook(name: Annotated[str, Path(max_length=128)]):
        text = runbooks.page(name)
        if text is None:
            return error_response(404, f"no runbook {name!r}")
        return HTMLResponse(text, headers=PAGE_HEADERS)

    @app.get("/readyz")
    async def readyz():
        return {"status": "ready", "service": telemetry.service,
                "checks": {"store": {"status": "ok", "stored": store().count, "bytes": store().bytes}}}

    if telemetry.enabled:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider,
                                           excluded_urls="healthz,readyz,metrics,rows",
                                           exclude_spans=["receive", "send"])
    return app


# The page runs only its own script; an email's HTML shows in a sandboxed frame.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
                                           "style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'",
                "X-Content-Type-Options": "nosniff"}
