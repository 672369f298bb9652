"""inventory: the back service, with a small SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path
from opentelemetry.trace import Status, StatusCode
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .faults import Faults
from .app_base import from_state
from .errors import ErrorBody, JsonInt, error_response
from .settings import MAX_ITEM_ID, InventorySettings
from .telemetry import Telemetry
from .web import DependencyUnavailable, build_app, fault_dependency, include_api

log = logging.getLogger("demo_app.inventory")

SEED = [
    (1, "espresso beans", 1290, 40),
    (2, "pour-over kettle", 4500, 12),
    (3, "ceramic mug", 1500, 60),
    (4, "burr grinder", 12900, 8),
    (5, "paper filters", 450, 120),
    (6, "milk jug", 2200, 25),
]


ItemId = Annotated[int, Path(ge=1, le=MAX_ITEM_ID, description="an id the store can hold")]


class ReserveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: JsonInt = Field(ge=1, le=100)


class Store:
    """SQLite behind a lock; queries go through the OTel dbapi-traced connection."""

    def __init__(self, path: str, telemetry: Telemetry, faults: Faults):
        self._faults = faults
        self._lock = threading.Lock()
        self._raw = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._stock_gauge = telemetry.metrics.stock_level
        self._initial: dict[int, int] = {}
        if telemetry.enabled:
            from opentelemetry.instrumentation.dbapi import instrument_connection

            self._conn = instrument_connection(
                "demo_app.inventory", self._raw, database_system="sqlite",
                tracer_provider=telemetry.tracer_provider,
            )
        else:
            self._conn = self._raw
        # A cursor per query, as DB-API code usually does; the benchmark's tuning
        # (demo_app/tuning.py) shares one instead (all use is under the lock).
        self._shared_cursor = self._conn.cursor() if telemetry.tuned else None
        with self._lock:
            self._raw.execute(
                "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " price_cents INTEGER NOT NULL, stock INTEGER NOT NULL)"
            )
            if self._raw.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0:
                self._raw.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", SEED)
            for item_id, name, _, stock in self._raw.execute("SELECT * FROM items").fetchall():
                self._initial[item_id] = stock
                self._stock_gauge.labels(name).set(stock)

    def _cursor(self):
        return self._shared_cursor if self._shared_cursor is not None else self._conn.cursor()

    def _check(self) -> None:
        if self._faults.outage:
            raise DependencyUnavailable("store unavailable (fault: outage)")

    def ping(self) -> None:
        self._check()
        with self._lock:
            self._raw.execute("SELECT 1").fetchone()

    @staticmethod
    def _row(row) -> dict:
        return {"id": row[0], "name": row[1], "price_cents": row[2], "stock": row[3]}

    def list_items(self) -> list[dict]:
        self._check()
        with self._lock:
            cur = self._cursor()
            cur.execute("SELECT id, name, price_cents, stock FROM items ORDER BY id")
            return [self._row(r) for r in cur.fetchall()]

    def get_item(self, item_id: int) -> dict | None:
        self._check()
        with self._lock:
            cur = self._cursor()
            cur.execute("SELECT id, name, price_cents, stock FROM items WHERE id = ?", (item_id,))
            row = cur.fetchone()
        return self._row(row) if row else None

    def reserve(self, item_id: int, quantity: int, span) -> tuple[str, dict | None]:
        """Returns ("reserved"|"insufficient"|"missing", item)."""
        self._check()
        with self._lock:
            cur = self._cursor()
            cur.execute("UPDATE items SET stock = stock - ? WHERE id = ? AND stock >= ?", (quantity, item_id, quantity))
            updated = cur.rowcount
            cur.execute("SELECT id, name, price_cents, stock FROM items WHERE id = ?", (item_id,))
            row = cur.fetchone()
            if row is None:
                return "missing", None
            item = self._row(row)
            if updated:
                span.add_event("stock.reserved", {"demo.item.id": item_id, "demo.quantity": quantity})
                self._stock_gauge.labels(item["name"]).set(item["stock"])
                return "reserved", item
            # Out of stock: refuse this one and restock so the demo keeps selling.
            cur.execute("UPDATE items SET stock = ? WHERE id = ?", (self._initial[item_id], item_id))
            span.add_event("stock.replenished", {"demo.item.id": item_id, "demo.stock": self._initial[item_id]})
            self._stock_gauge.labels(item["name"]).set(self._initial[item_id])
            return "insufficient", item

    def audit(self) -> int:
        """The stock audit: every item's stock is a count (never negative). Returns the
        number of items checked; raises when the store is unavailable or a count is off."""
        self._check()
        with self._lock:
            rows = self._cursor().execute("SELECT id, stock FROM items").fetchall()
        bad = [item_id for item_id, stock in rows if stock < 0]
        if bad:
            raise ValueError(f"negative stock on items {bad}")
        return len(rows)

    def close(self) -> None:
        with self._lock:
            self._raw.close()


async def run_audits(store: Store, telemetry: Telemetry, interval_s: float) -> None:
    """Runs the stock audit every `interval_s`, as a cron job would, and reports it the way
    batch jobs do: a last-success timestamp and runs by result."""
    metrics, tracer = telemetry.metrics, telemetry.tracer
    while True:
        with tracer.start_as_current_span("inventory.stock_audit") as span:
            try:
                checked = store.audit()
            except Exception as e:  # noqa: BLE001 - a failed run is counted, the job goes on
                metrics.job_runs.labels("stock-audit", "failure").inc()
                span.record_exception(e)
                span.set_status(Status(StatusCode.ERROR, str(e)))
                log.warning("stock audit failed", extra={"error": str(e)})
            else:
                metrics.job_runs.labels("stock-audit", "success").inc()
                metrics.job_last_success.labels("stock-audit").set(time.time())
                span.set_attribute("demo.audit.items", checked)
        await asyncio.sleep(interval_s)


# The store the lifespan opened, for the routes.
StoreDep = Annotated[Store, Depends(from_state("store"))]


def create_app(settings: InventorySettings, telemetry: Telemetry | None = None) -> FastAPI:
    telemetry = telemetry or Telemetry("inventory")
    faults = Faults.from_settings(settings)
    tracer = telemetry.tracer

    @contextlib.asynccontextmanager
    async def open_store(app: FastAPI):
        app.state.store = Store(settings.db_path, telemetry, faults)
        audits = asyncio.create_task(run_audits(app.state.store, telemetry, settings.audit_interval_s))
        try:
            yield
        finally:
            audits.cancel()
            app.state.store.close()

    async def check_store():
        app.state.store.ping()

    app = build_app(
        telemetry, title="inventory", settings=settings, faults=faults,
        checks={"store": check_store}, resources=open_store,
    )
    api = APIRouter(prefix="/api", dependencies=[Depends(fault_dependency)],
                    responses={code: {"model": ErrorBody} for code in (404, 409, 500, 503)})

    @api.get("/items")
    async def list_items(store: StoreDep):
        items = store.list_items()
        return {"items": items, "count": len(items)}

    @api.get("/items/{item_id}")
    async def get_item(item_id: ItemId, store: StoreDep):
        item = store.get_item(item_id)
        if item is None:
            return error_response(404, f"item {item_id} not found")
        return item

    @api.post("/items/{item_id}/reserve")
    async def reserve(item_id: ItemId, body: ReserveRequest, store: StoreDep):
        quantity = body.quantity
        with tracer.start_as_current_span("inventory.reserve") as span:
            span.set_attribute("demo.item.id", item_id)
            span.set_attribute("demo.quantity", quantity)
            outcome, item = store.reserve(item_id, quantity, span)
            span.set_attribute("demo.reserve.outcome", outcome)
        if outcome == "missing":
            return error_response(404, f"item {item_id} not found")
        if outcome == "insufficient":
            log.info("reservation refused: insufficient stock", extra={"item_id": item_id, "quantity": quantity})
            return JSONResponse({"error": "insufficient stock", "item": item}, status_code=409)
        log.info("reserved", extra={"item_id": item_id, "quantity": quantity, "stock": item["stock"]})
        return {"reserved": quantity, "item": item}

    include_api(app, api)
    return app
