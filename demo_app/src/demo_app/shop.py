"""shop: the front service; every /api call goes to inventory over HTTP."""

from __future__ import annotations

import contextlib
import logging
import uuid

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Path
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field

from .faults import Faults
from .app_base import from_state
from .errors import ErrorBody, JsonInt, error_response
from .settings import MAX_ITEM_ID, ShopSettings
from .telemetry import Telemetry, request_id_var
from .web import DependencyUnavailable, build_app, fault_dependency, include_api

log = logging.getLogger("demo_app.shop")


ProductId = Annotated[int, Path(ge=1, le=MAX_ITEM_ID, description="an id the store can hold")]


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: JsonInt = Field(ge=1, le=MAX_ITEM_ID)
    quantity: JsonInt = Field(1, ge=1, le=100)


class InventoryClient:
    def __init__(self, settings: ShopSettings, telemetry: Telemetry, faults: Faults,
                 transport: httpx.AsyncBaseTransport | None = None):
        self._faults = faults
        timeout = httpx.Timeout(settings.downstream_timeout_s)
        self.client = httpx.AsyncClient(base_url=settings.inventory_url, timeout=timeout, transport=transport)
        if telemetry.enabled:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            # Creates the client spans and injects W3C traceparent into every call.
            HTTPXClientInstrumentor.instrument_client(self.client, tracer_provider=telemetry.tracer_provider)
        # Readiness probes use their own client.
        self.probe = httpx.AsyncClient(base_url=settings.inventory_url, timeout=timeout, transport=transport)

    async def request(self, method: str, path: str, **kw) -> httpx.Response:
        if self._faults.outage:
            raise DependencyUnavailable("inventory unavailable (fault: outage)")
        headers = {"x-request-id": request_id_var.get() or uuid.uuid4().hex}
        try:
            return await self.client.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(f"inventory unreachable: {type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        if self._faults.outage:
            raise DependencyUnavailable("inventory unavailable (fault: outage)")
        # Untraced (and suppressed, should the transport be shared): no span every few seconds.
        with suppress_http_instrumentation():
            resp = await self.probe.get("/healthz")
        resp.raise_for_status()

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.probe.aclose()


def _upstream_error(resp: httpx.Response) -> JSONResponse:
    return error_response(502, f"inventory answered {resp.status_code}")


def _product(item: dict) -> dict:
    return {
        "id": item["id"], "name": item["name"], "price": item["price_cents"] / 100,
        "in_stock": item["stock"] > 0,
    }


# The client the lifespan opened, for the routes.
Inventory = Annotated[InventoryClient, Depends(from_state("inventory"))]


def create_app(settings: ShopSettings, telemetry: Telemetry | None = None,
               transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    telemetry = telemetry or Telemetry("shop")
    faults = Faults.from_settings(settings)
    orders = telemetry.metrics.orders
    tracer = telemetry.tracer

    @contextlib.asynccontextmanager
    async def inventory_client(app: FastAPI):
        app.state.inventory = InventoryClient(settings, telemetry, faults, transport)
        try:
            yield
        finally:
            await app.state.inventory.aclose()

    async def check_inventory():
        await app.state.inventory.ping()

    app = build_app(
        telemetry, title="shop", settings=settings, faults=faults,
        checks={"inventory": check_inventory}, resources=inventory_client,
    )
    api = APIRouter(prefix="/api", dependencies=[Depends(fault_dependency)],
                    responses={code: {"model": ErrorBody} for code in (404, 409, 500, 502, 503)})

    @api.get("/products")
    async def list_products(inventory: Inventory):
        resp = await inventory.request("GET", "/api/items")
        if resp.status_code != 200:
            return _upstream_error(resp)
        products = [_product(i) for i in resp.json()["items"]]
        return {"products": products, "count": len(products)}

    @api.get("/products/{product_id}")
    async def get_product(product_id: ProductId, inventory: Inventory):
        resp = await inventory.request("GET", f"/api/items/{product_id}")
        if resp.status_code == 404:
            return error_response(404, f"product {product_id} not found")
        if resp.status_code != 200:
            return _upstream_error(resp)
        return _product(resp.json())

    @api.post("/checkout")
    async def checkout(order: CheckoutRequest, inventory: Inventory):
        pid, qty = order.product_id, order.quantity
        with tracer.start_as_current_span("shop.checkout") as span:
            span.set_attribute("demo.product.id", pid)
            span.set_attribute("demo.quantity", qty)
            try:
                resp = await inventory.request("POST", f"/api/items/{pid}/reserve", json={"quantity": qty})
            except DependencyUnavailable as exc:
                orders.labels("failed").inc()
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute("demo.order.result", "failed")
                raise
            if resp.status_code in (404, 409):
                orders.labels("rejected").inc()
                span.set_attribute("demo.order.result", "rejected")
                span.add_event("order.rejected", {"demo.reason": resp.json().get("error", "")})
                log.info("order rejected", extra={"product_id": pid, "quantity": qty,
                                                  "inventory_status": resp.status_code})
                return JSONResponse({"error": resp.json().get("error", "rejected"), "result": "rejected"},
                                    status_code=resp.status_code)
            if resp.status_code != 200:
                orders.labels("failed").inc()
                span.set_attribute("demo.order.result", "failed")
                span.set_status(Status(StatusCode.ERROR, f"inventory answered {resp.status_code}"))
                log.error("order failed", extra={"product_id": pid, "inventory_status": resp.status_code})
                return _upstream_error(resp)
            item = resp.json()["item"]
            order_id = uuid.uuid4().hex[:12]
            total = round(item["price_cents"] * qty / 100, 2)
            orders.labels("placed").inc()
            span.set_attribute("demo.order.id", order_id)
            span.set_attribute("demo.order.result", "placed")
            span.add_event("order.placed", {"demo.order.id": order_id, "demo.order.total": total})
            log.info("order placed", extra={"order_id": order_id, "product_id": pid, "quantity": qty,
                                            "total": total})
            return {"order_id": order_id, "product_id": pid, "quantity": qty, "total": total, "result": "placed"}

    include_api(app, api)
    return app
