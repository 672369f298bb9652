"""What shop and inventory share: RED middleware, health, metrics, fault API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .faults import FaultError, Faults, FaultState, FaultUpdate, InjectedFault, SimulatedBug
from .app_base import background, new_app
from .errors import ErrorBody, error_response
from .settings import ServiceSettings
from .telemetry import Telemetry, request_id_var, service_var

log = logging.getLogger("demo_app.http")

# A readiness check returns None when fine, or raises with a reason.
Check = Callable[[], Awaitable[None]]
UNMATCHED_ROUTE = "unmatched"
# The fault switch's auth (Authorization: Bearer $DEMO_ADMIN_TOKEN), in the OpenAPI schema.
BEARER = HTTPBearer(auto_error=False, description="DEMO_ADMIN_TOKEN")
NOT_INSTRUMENTED = "healthz,readyz,metrics"


class DependencyUnavailable(Exception):
    """A downstream (inventory for shop, the store for inventory) is unavailable."""


class REDMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request id, in-flight
    gauge, request counter and latency histogram with trace_id exemplars, one log line."""

    def __init__(self, app, telemetry: Telemetry, request_logs: bool = True):
        self.app = app
        self.t = telemetry
        self.m = telemetry.metrics
        self.request_logs = request_logs
        self.in_flight = self.m.in_flight.labels(telemetry.service)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = None
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                rid = v.decode("latin-1")[:64]
                break
        rid = rid or uuid.uuid4().hex
        tok_r = request_id_var.set(rid)
        tok_s = service_var.set(self.t.service)
        status = 500
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [rid_header]
            await send(message)

        start = time.perf_counter()
        self.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            self.in_flight.dec()
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or UNMATCHED_ROUTE
            method = scope["method"]
            ctx = trace.get_current_span().get_span_context()
            exemplar = {"trace_id": format(ctx.trace_id, "032x")} if ctx.is_valid and ctx.trace_flags.sampled else None
            self.m.http_requests.labels(self.t.service, route, method, str(status)).inc(exemplar=exemplar)
            self.m.http_duration.labels(self.t.service, route, method).observe(elapsed, exemplar=exemplar)
            if self.request_logs and route not in ("/metrics", "/healthz", "/readyz"):
                log.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    "%s %s -> %d",
                    method,
                    route,
                    status,
                    extra={"http_method": method, "http_route": route, "status_code": status,
                           "duration_ms": round(elapsed * 1000, 3)},
                )
            request_id_var.reset(tok_r)
            service_var.reset(tok_s)


def _record_on_span(exc: BaseException) -> None:
    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)))


def build_app(
    telemetry: Telemetry,
    *,
    title: str,
    settings: ServiceSettings,
    faults: Faults,
    checks: dict[str, Check],
    resources: Callable[[FastAPI], contextlib.AbstractAsyncContextManager] | None = None,
) -> FastAPI:
    """The app with everything shop and inventory share. `resources(app)` opens what the
    role needs (its store, its HTTP client) for the lifespan and puts it on app.state;
    routes reach it through from_state()."""
    m = telemetry.metrics
    service = telemetry.service
    admin_token = settings.admin_token.get_secret_value()
    readiness_gauges = {name: m.readiness.labels(service, name) for name in checks}

    async def run_checks() -> dict[str, dict]:
        results = {}
        for name, check in checks.items():
            start = time.perf_counter()
            try:
                await check()
                res = {"status": "ok"}
            except Exception as exc:  # every failure is a "not ready", never a crash
                res = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"}
            res["duration_ms"] = round((time.perf_counter() - start) * 1000, 3)
            readiness_gauges[name].set(1 if res["status"] == "ok" else 0)
            results[name] = res
        return results

    async def readiness_loop():
        # Keeps demo_readiness fresh without anyone probing /readyz (alerts read it).
        previous = None
        while True:
            results = await run_checks()
            state = {k: v["status"] for k, v in results.items()}
            if state != previous:
                log.log(
                    logging.INFO if all(s == "ok" for s in state.values()) else logging.WARNING,
                    "readiness changed: %s", state, extra={"readiness": state},
                )
                previous = state
            await asyncio.sleep(settings.readiness_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        log.info("%s starting", service, extra={"faults": faults.state()})
        async with contextlib.AsyncExitStack() as stack:
            if resources is not None:
                await stack.enter_async_context(resources(app))
            await stack.enter_async_context(background(readiness_loop()))
            yield
        log.info("%s stopped", service)
        telemetry.shutdown()

    app = new_app(title, lifespan, settings, telemetry)
    app.state.telemetry = telemetry
    app.state.faults = faults
    app.state.run_checks = run_checks

    @app.exception_handler(InjectedFault)
    async def _injected(request: Request, exc: InjectedFault):
        _record_on_span(exc)
        log.warning("injected fault", extra={"error": str(exc)})
        return error_response(500, str(exc))

    @app.exception_handler(SimulatedBug)
    async def _bug(request: Request, exc: SimulatedBug):
        # What a service does with an error it did not expect: log it with its traceback
        # (stdout's exc_info; the OTLP record's exception.* attributes), answer 500.
        _record_on_span(exc)
        log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error")

    @app.exception_handler(DependencyUnavailable)
    async def _unavailable(request: Request, exc: DependencyUnavailable):
        _record_on_span(exc)
        log.error("dependency unavailable: %s", exc)
        return error_response(503, str(exc))

    @app.get("/readyz")
    async def readyz():
        results = await run_checks()
        ready = all(r["status"] == "ok" for r in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "service": service, "checks": results},
            status_code=200 if ready else 503,
        )

    def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> None:
        if not admin_token:
            raise HTTPException(403, "admin API disabled: DEMO_ADMIN_TOKEN is not set")
        token = credentials.credentials if credentials else ""
        if not secrets.compare_digest(token.encode(), admin_token.encode()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer $DEMO_ADMIN_TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    auth_errors = {code: {"model": ErrorBody} for code in (401, 403)}
    admin = APIRouter(dependencies=[Depends(require_admin)], responses=auth_errors)

    @admin.get("/admin/faults")
    async def get_faults() -> FaultState:
        return faults.state()

    @admin.post("/admin/faults")
    async def set_faults(update: FaultUpdate) -> FaultState:
        try:
            state = faults.update(update)
        except FaultError as exc:
            raise HTTPException(400, str(exc)) from None
        log.warning("faults set", extra={"faults": state})
        return state

    @admin.delete("/admin/faults")
    async def clear_faults() -> FaultState:
        state = faults.clear()
        log.warning("faults cleared", extra={"faults": state})
        return state

    app.include_router(admin)
    app.add_middleware(REDMiddleware, telemetry=telemetry, request_logs=settings.request_logs)
    if telemetry.enabled and not telemetry.agent:  # an agent instruments FastAPI itself
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # exclude_spans: no internal span per ASGI receive/send message; they double the
        # span count for no insight and cost the most (see bench/bench.py).
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=telemetry.tracer_provider, excluded_urls=NOT_INSTRUMENTED,
            exclude_spans=["receive", "send"],
        )
    return app


def include_api(app: FastAPI, api: APIRouter) -> None:
    """Includes the /api router ahead of /healthz, /readyz, /metrics and /admin (no path
    overlaps, so routing is unchanged): the router and the tracing middleware (which
    names each span by matching app.routes in order) find the busy routes first."""
    before = list(app.router.routes)
    app.include_router(api)
    app.router.routes[:] = app.router.routes[len(before):] + before


async def fault_dependency(request: Request) -> None:
    """FastAPI dependency for /api routes: latency, error-ratio and exception-ratio faults."""
    await request.app.state.faults.apply(trace.get_current_span())
