"""The listener other machines reach, when the stack is shared (DEMO_PUBLISHED_PORT): the
same app behind TLS and authentication, beside the plain listener the stack's own
containers use (Prometheus' scrapes, the load generator, Alertmanager's webhooks).

A request passes with the stack's user and password (HTTP basic auth: what a browser
asks for) or with the admin token as a bearer (what the drills and the fault switch send);
anything else gets 401, before the app sees it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path

REALM = 'Basic realm="observability stack", charset="UTF-8"'


class Authenticated:
    """ASGI middleware: 401 unless the request carries the stack's credentials."""

    def __init__(self, app, user: str, password: str, bearer: str = ""):
        self.app = app
        self.basic = f"{user}:{password}".encode()
        self.bearer = bearer.encode()

    def allowed(self, header: bytes) -> bool:
        scheme, _, value = header.partition(b" ")
        if scheme.lower() == b"basic":
            try:
                given = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            return secrets.compare_digest(given, self.basic)
        if scheme.lower() == b"bearer" and self.bearer:
            return secrets.compare_digest(value.strip(), self.bearer)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan: the plain listener's app runs it
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        if self.allowed(header):
            return await self.app(scope, receive, send)
        body = b'{"error": "authentication required: the stack\'s user and password, or the admin token"}'
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", REALM.encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def servers(app, settings):
    """The uvicorn servers to run: the plain one, and the published one where it is set."""
    import uvicorn

    common = dict(log_config=None, access_log=False, timeout_graceful_shutdown=5,
                  limit_concurrency=settings.max_connections)
    plain = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, **common))
    if settings.published_port is None:
        return [plain]
    token = getattr(settings, "admin_token", None)
    guarded = Authenticated(app, settings.auth_user, Path(settings.auth_password_file).read_text().strip(),
                            token.get_secret_value() if token is not None else "")
    published = uvicorn.Server(uvicorn.Config(guarded, host=settings.host, port=settings.published_port,
                                              lifespan="off", ssl_certfile=settings.tls_cert_file,
                                              ssl_keyfile=settings.tls_key_file, **common))
    return [plain, published]
