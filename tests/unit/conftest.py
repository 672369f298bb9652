"""Fixtures for the demo_app unit tests: in-process apps, in-memory exporters."""

from __future__ import annotations

import logging
import pathlib
import socket
import sys

import pytest

# src layout: import the package from the checkout even when it is not installed.
_SRC = pathlib.Path(__file__).resolve().parents[2] / "demo_app" / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from demo_app import inventory, shop  # noqa: E402
from demo_app.settings import InventorySettings, ShopSettings  # noqa: E402
from demo_app.telemetry import Telemetry  # noqa: E402

ADMIN_TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    # The host's OTEL_*/DEMO_* settings must not leak into the tests.
    import os

    for k in list(os.environ):
        if k.startswith(("OTEL_", "DEMO_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """Runs an ASGI app under uvicorn on 127.0.0.1 in a thread (own event loop and
    context, so trace context can only arrive through HTTP headers)."""

    def __init__(self, app):
        import threading
        import time

        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class Stack:
    """inventory served by uvicorn on a loopback port, shop in-process (TestClient)
    calling it over real HTTP, both exporting to one in-memory span exporter."""

    def __init__(self, shop_env: dict | None = None, inventory_env: dict | None = None):
        self.spans = InMemorySpanExporter()
        self.logs = InMemoryLogRecordExporter()
        self.inv_tel = Telemetry("inventory", enabled=True, span_exporter=self.spans, log_exporter=self.logs)
        self.shop_tel = Telemetry("shop", enabled=True, span_exporter=self.spans, log_exporter=self.logs)
        inv_settings = InventorySettings(admin_token=ADMIN_TOKEN, **(inventory_env or {}))
        self.inventory_app = inventory.create_app(inv_settings, self.inv_tel)
        self.inventory = LoopbackServer(self.inventory_app)
        shop_settings = ShopSettings(admin_token=ADMIN_TOKEN, inventory_url=self.inventory.url,
                                     **(shop_env or {}))
        self.shop_app = shop.create_app(shop_settings, self.shop_tel)

    def flush(self):
        self.shop_tel.tracer_provider.force_flush()
        self.inv_tel.tracer_provider.force_flush()
        for t in (self.shop_tel, self.inv_tel):
            if t.logger_provider is not None:
                t.logger_provider.force_flush()
        spans = self.spans.get_finished_spans()
        # The stock audit (a batch job inventory runs at start) is a trace of its own:
        # kept apart, so that a test sees the traces of its requests.
        self.audit_traces = {s.context.trace_id for s in spans if s.name == "inventory.stock_audit"}
        return [s for s in spans if s.context.trace_id not in self.audit_traces]


@pytest.fixture
def stack():
    s = Stack()
    yield s
    s.inventory.stop()
    s.shop_tel.shutdown()


def pytest_terminal_summary(terminalreporter) -> None:
    """Figures of the hostile-input runs of this session (also in build/*.json)."""
    import sys

    generated = sys.modules.get("tests.unit.test_hostile_input")
    if generated is not None and generated.CASES:
        terminalreporter.write_line("generated API tests (cases / 5xx): " + ", ".join(
            f"{role} {n}/{generated.SERVER_ERRORS[role]}" for role, n in sorted(generated.CASES.items())))
    flood = sys.modules.get("tests.unit.test_flood")
    if flood is not None and flood.FIGURES:
        terminalreporter.write_line("flood (requests, RSS MiB before/peak/after of mem_limit): " + ", ".join(
            f"{role} {f['requests']}, {f['rss_before_mib']:.0f}/{f['rss_peak_mib']:.0f}/{f['rss_after_mib']:.0f}"
            f" of {f['mem_limit_mib']}" for role, f in sorted(flood.FIGURES.items())))
