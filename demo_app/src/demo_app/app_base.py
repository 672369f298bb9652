"""The FastAPI app every role starts from (new_app: the error shape, the request limits,
/healthz, /metrics), the dependency that hands routes what the lifespan opened
(from_state), and a background task bound to the lifespan (background)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .errors import ErrorBody, install_error_handlers
from .request_limits import RequestLimits

# What every route may answer besides its own success (in the OpenAPI schema).
COMMON_ERRORS = {code: {"model": ErrorBody} for code in (400, 413, 415)}
METRICS_RESPONSE = {200: {"description": "Prometheus exposition (OpenMetrics when asked for)",
                          "content": {"text/plain": {}, "application/openmetrics-text": {}}}}


def new_app(title: str, lifespan, settings, telemetry, on_reject=None) -> FastAPI:
    """A role's FastAPI app with what all four share: /openapi.json (no docs UI; the
    generated tests read it), the error shape, the request limits, /healthz, /metrics."""
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, responses=COMMON_ERRORS)
    install_error_handlers(app)
    app.add_middleware(RequestLimits, router=app.router, max_body_bytes=settings.max_body_bytes,
                       max_json_depth=settings.max_json_depth, on_reject=on_reject)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "service": telemetry.service}

    @app.get("/metrics", response_class=Response, responses=METRICS_RESPONSE)
    async def metrics(request: Request):
        body, content_type = telemetry.metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return app


def from_state(name: str):
    """FastAPI dependency: the resource the lifespan put on app.state under `name`."""

    def dependency(request: Request):
        return getattr(request.app.state, name)

    return dependency


@contextlib.asynccontextmanager
async def background(coro: Coroutine) -> AsyncIterator[asyncio.Task]:
    """Runs `coro` as a task for the duration of the block (an app's lifespan), then
    cancels it and waits until it has stopped."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
