"""loadgen: steady traffic against shop (rate and mix from env), one summary line
per interval, and its own /metrics on 8082."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import httpx
from fastapi import FastAPI

from .app_base import background, new_app
from .settings import LOADGEN_ENDPOINTS as ENDPOINTS
from .settings import LoadgenSettings
from .telemetry import Telemetry

log = logging.getLogger("demo_app.loadgen")


class LoadGen:
    def __init__(self, settings: LoadgenSettings, telemetry: Telemetry):
        self.target = settings.loadgen_target.rstrip("/")
        self.rps = settings.loadgen_rps
        self.mix = settings.mix
        self.interval = settings.loadgen_summary_interval_s
        self.concurrency = settings.loadgen_concurrency
        self.max_product_id = settings.loadgen_max_product_id
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


def create_app(settings: LoadgenSettings, telemetry: Telemetry | None = None) -> FastAPI:
    telemetry = telemetry or Telemetry("loadgen")
    gen = LoadGen(settings, telemetry)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            async with background(gen.run()):
                yield
        finally:
            await gen.client.aclose()
            telemetry.shutdown()

    return new_app("loadgen", lifespan, settings, telemetry)
