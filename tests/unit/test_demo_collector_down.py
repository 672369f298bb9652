"""Telemetry never holds a request up: with an exporter that hangs, requests are all
served while the export is stuck; with the collector unreachable, exports fail in the
background and the failures show in the log and in a metric. Counted, not timed."""

import io
import json
import threading

from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from demo_app import inventory
from demo_app.settings import InventorySettings
from demo_app.telemetry import Telemetry, configure_logging

from .conftest import closed_port


class HangingExporter(SpanExporter):
    """Blocks in export() until released: a collector that accepts and never answers."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        self.entered.set()
        self.release.wait(60)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()


def test_requests_are_served_while_the_exporter_hangs(monkeypatch):
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")  # overflows while the export hangs
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8")
    exporter = HangingExporter()
    tel = Telemetry("inventory", enabled=True, span_exporter=exporter)
    with TestClient(inventory.create_app(InventorySettings(), tel)) as client:
        assert client.get("/api/items/1").status_code == 200
        assert exporter.entered.wait(30), "the span exporter was never called"
        # The exporter is stuck in its first call; 300 requests (3 spans each, far more
        # than the queue holds) are all served meanwhile.
        codes = [client.get("/api/items/1").status_code for _ in range(300)]
        assert codes == [200] * 300
        assert exporter.calls == 1 and not exporter.release.is_set(), "the export did not stay stuck"
        exporter.release.set()
    tel.shutdown()


def test_collector_unreachable_is_counted_and_logged(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    tel = Telemetry("inventory", enabled=True)  # real OTLP/HTTP exporters, nobody listening
    assert tel.logger_provider is not None
    out = io.StringIO()
    configure_logging(tel, "INFO", stream=out)
    reg = tel.metrics.registry
    labels = {"service": "inventory"}
    with TestClient(inventory.create_app(InventorySettings(), tel)) as client:
        for _ in range(20):
            assert client.get("/api/items/1").status_code == 200
        # force_flush runs the exports now (they fail: connection refused) and returns.
        tel.tracer_provider.force_flush()
        tel.logger_provider.force_flush()
        for signal in ("traces", "logs"):
            assert reg.get_sample_value("demo_telemetry_export_errors_total", {**labels, "signal": signal}) >= 1
        r = client.get("/metrics")
        assert 'demo_telemetry_export_errors_total{service="inventory",signal="traces"}' in r.text
    lines = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
    failures = [x for x in lines if x["logger"].startswith("opentelemetry.exporter") and x["level"] == "ERROR"]
    assert failures, "export failures must be visible in the JSON log"


def test_bad_batch_settings_degrade_telemetry_not_the_service(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")  # < default batch size 512: the SDK refuses
    tel = Telemetry("inventory", enabled=True)
    assert tel.config_errors and "traces disabled" in tel.config_errors[0]
    out = io.StringIO()
    configure_logging(tel, "INFO", stream=out)
    assert "telemetry configuration error: traces disabled" in out.getvalue()
    with TestClient(inventory.create_app(InventorySettings(), tel)) as client:
        assert client.get("/api/items").status_code == 200
