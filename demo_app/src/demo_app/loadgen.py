"""loadgen: steady traffic against shop (rate and mix from env), one summary line
per interval, and its own /metrics on 8082."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from .config import ConfigError, _env, env_float, env_int
from .telemetry import Telemetry

log = logging.getLogger("demo_app.loadgen")
ENDPOINTS = ("products", "product", "checkout")
DEFAULT_MIX = "products=5,product=3,checkout=2"


def parse_mix(raw: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in raw.split(","):
        name, sep, weight = part.strip().partition("=")
        if not sep or name not in ENDPOINTS:
            raise ConfigError(f"DEMO_LOADGEN_MIX: bad entry {part!r}; expected NAME=WEIGHT with NAME in {ENDPOINTS}")
        try:
            w = float(weight)
        except ValueError:
            raise ConfigError(f"DEMO_LOADGEN_MIX: weight {weight!r} is not a number") from None
        if w < 0:
            raise ConfigError(f"DEMO_LOADGEN_MIX: weight for {name} is negative")
        mix[name] = w
    if sum(mix.values()) <= 0:
        raise ConfigError("DEMO_LOADGEN_MIX: all weights are zero")
    return mix


class LoadGen:
    def __init__(self, telemetry: Telemetry):
        self.target = _env("DEMO_LOADGEN_TARGET", "http://shop:8080").rstrip("/")
        self.rps = env_float("DEMO_LOADGEN_RPS", 5.0, 0.1, 1000)
        self.mix = parse_mix(_env("DEMO_LOADGEN_MIX", DEFAULT_MIX))
        self.interval = env_float("DEMO_LOADGEN_SUMMARY_INTERVAL_S", 10.0, 1, 3600)
        self.concurrency = env_int("DEMO_LOADGEN_CONCURRENCY", 20, 1, 1000)
        self.max_product_id = env_int("DEMO_LOADGEN_MAX_PRODUCT_ID", 7, 1, 10_000)  # 7: some 404s
        self.counter = telemetry.metrics.loadgen_requests
        for ep in ENDPOINTS:
            for outcome in ("ok", "error"):
                self.counter.labels(ep, outcome)
        self.client = httpx.AsyncClient(base_url=self.target, timeout=httpx.Timeout(10.0))
        if telemetry.enabled:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            HTTPXClientInstrumentor.instrument_client(self.client, tracer_provider=telemetry.tracer_provider)
        self._reset()

    def _reset(self):
        self.window = {ep: {"ok": 0, "error": 0} for ep in ENDPOINTS}
        self.latencies: list[float] = []
        self.window_start = time.monotonic()

    async def one(self, endpoint: str) -> None:
        start = time.perf_counter()
        try:
            if endpoint == "products":
                r = await self.client.get("/api/products")
            elif endpoint == "product":
                r = await self.client.get(f"/api/products/{random.randint(1, self.max_product_id)}")
            else:
                r = await self.client.post("/api/checkout", json={
                    "product_id": random.randint(1, 6), "quantity": random.randint(1, 3)})
            # 4xx (unknown product, out of stock) are business answers, not failures.
            outcome = "ok" if r.status_code < 500 else "error"
        except httpx.HTTPError:
            outcome = "error"
        self.latencies.append(time.perf_counter() - start)
        self.counter.labels(endpoint, outcome).inc()
        self.window[endpoint][outcome] += 1

    def summary(self) -> None:
        elapsed = time.monotonic() - self.window_start
        total = sum(v["ok"] + v["error"] for v in self.window.values())
        errors = sum(v["error"] for v in self.window.values())
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0.0
        per = " ".join(f"{ep}={v['ok']}/{v['error']}" for ep, v in self.window.items())
        log.info(
            "loadgen: %d requests in %.1fs (%.1f/s), %d errors, p50 %.1fms p99 %.1fms, ok/error %s",
            total, elapsed, total / elapsed if elapsed else 0, errors, p50, p99, per,
            extra={"requests": total, "errors": errors, "rate": round(total / elapsed, 2) if elapsed else 0,
                   "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "target": self.target},
        )
        self._reset()

    async def run(self) -> None:
        names, weights = list(self.mix), list(self.mix.values())
        sem = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()
        period = 1.0 / self.rps
        next_at = time.monotonic()
        next_summary = next_at + self.interval
        log.info("loadgen starting", extra={"target": self.target, "rps": self.rps, "mix": self.mix})

        async def guarded(ep):
            try:
                await self.one(ep)
            finally:
                sem.release()

        try:
            await self._loop(names, weights, sem, tasks, guarded, period, next_at, next_summary)
        finally:
            # Stopping: in-flight requests are cancelled, not counted as errors.
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, names, weights, sem, tasks, guarded, period, next_at, next_summary) -> None:
        while True:
            now = time.monotonic()
            if now >= next_summary:
                self.summary()
                next_summary = now + self.interval
            if now < next_at:
                await asyncio.sleep(next_at - now)
            next_at = max(next_at + period, time.monotonic() - 1.0)  # no burst after a stall
            await sem.acquire()  # bounded concurrency when shop is slow
            t = asyncio.create_task(guarded(random.choices(names, weights)[0]))
            tasks.add(t)
            t.add_done_callback(tasks.discard)


def create_app(telemetry: Telemetry | None = None) -> FastAPI:
    telemetry = telemetry or Telemetry("loadgen")
    gen = LoadGen(telemetry)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(gen.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await gen.client.aclose()
            telemetry.shutdown()

    app = FastAPI(title="loadgen", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "service": telemetry.service}

    @app.get("/metrics")
    async def metrics(request: Request):
        body, content_type = telemetry.metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return app
