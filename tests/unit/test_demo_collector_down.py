"""With the collector unreachable the services serve at full speed, the exporters
fail in the background, and the failures show in the log and in a metric."""

import io
import json
import statistics
import time

from fastapi.testclient import TestClient

from demo_app import inventory
from demo_app.config import Settings
from demo_app.telemetry import Telemetry, configure_logging

from .conftest import closed_port


def _latencies(client, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert client.get("/api/items/1").status_code == 200
        out.append(time.perf_counter() - t0)
    return out


def test_collector_unreachable(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "32")
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "32")

    off = Telemetry("inventory", enabled=False)
    with TestClient(inventory.create_app(Settings(role="inventory"), off)) as client:
        _latencies(client, 20)
        base = _latencies(client, 150)

    on = Telemetry("inventory", enabled=True)  # real OTLP/HTTP exporters, nobody listening
    assert on.logger_provider is not None
    out = io.StringIO()
    configure_logging(on, "INFO", stream=out)
    with TestClient(inventory.create_app(Settings(role="inventory"), on)) as client:
        _latencies(client, 20)
        lat = _latencies(client, 150)
        # Failures are counted, for both signals, within the export timeout + backoff.
        deadline = time.monotonic() + 15
        reg = on.metrics.registry
        labels = {"service": "inventory"}
        while time.monotonic() < deadline and not (
            reg.get_sample_value("demo_telemetry_export_errors_total", {**labels, "signal": "traces"})
            and reg.get_sample_value("demo_telemetry_export_errors_total", {**labels, "signal": "logs"})
        ):
            _latencies(client, 5)
            time.sleep(0.1)
        assert reg.get_sample_value("demo_telemetry_export_errors_total", {**labels, "signal": "traces"}) >= 1
        assert reg.get_sample_value("demo_telemetry_export_errors_total", {**labels, "signal": "logs"}) >= 1
        r = client.get("/metrics")
        assert 'demo_telemetry_export_errors_total{service="inventory",signal="traces"}' in r.text

    # Serving speed: the medians stay in the same league (a blocking exporter would add
    # the 1 s export timeout to requests).
    med_off, med_on = statistics.median(base), statistics.median(lat)
    assert med_on < med_off * 4 + 0.005, (med_off, med_on)
    assert max(lat) < 0.9, max(lat)  # a blocking export would cost the 1 s timeout
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
    with TestClient(inventory.create_app(Settings(role="inventory"), tel)) as client:
        assert client.get("/api/items").status_code == 200
