"""JSON log lines on stdout carry trace/span/request ids; the same records go over OTLP."""

import io
import json
import logging
import os
import pathlib
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from demo_app.telemetry import Telemetry, configure_logging

from .conftest import AUTH

SRC = pathlib.Path(__file__).resolve().parents[2] / "demo_app" / "src"


def test_request_logs_are_json_with_trace_ids(stack):
    out = io.StringIO()
    configure_logging(stack.shop_tel, "INFO", stream=out)
    with TestClient(stack.shop_app) as client:
        r = client.post("/api/checkout", json={"product_id": 5, "quantity": 2},
                        headers={"X-Request-ID": "req-abc-123"})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "req-abc-123"
        spans = stack.flush()
        otlp = stack.logs.get_finished_logs()

    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    placed = [rec for rec in lines if rec["message"] == "order placed"]
    assert len(placed) == 1
    rec = placed[0]
    for field in ("timestamp", "level", "logger", "message", "service", "trace_id", "span_id", "request_id"):
        assert field in rec, field
    assert rec["level"] == "INFO" and rec["logger"] == "demo_app.shop" and rec["service"] == "shop"
    assert rec["request_id"] == "req-abc-123"
    checkout = next(s for s in spans if s.name == "shop.checkout")
    assert rec["trace_id"] == format(checkout.context.trace_id, "032x")
    assert rec["span_id"] == format(checkout.context.span_id, "016x")

    access = [rec for rec in lines if rec["message"] == "POST /api/checkout -> 200"]
    assert access and access[0]["status_code"] == 200 and access[0]["trace_id"] == rec["trace_id"]

    # the OTLP copy of the same record: same trace/span ids, request_id attribute
    otlp_placed = [r.log_record for r in otlp if r.log_record.body == "order placed"]
    assert len(otlp_placed) == 1
    lr = otlp_placed[0]
    assert format(lr.trace_id, "032x") == rec["trace_id"]
    assert format(lr.span_id, "016x") == rec["span_id"]
    assert lr.attributes["request_id"] == "req-abc-123"
    assert lr.attributes["order_id"] == r.json()["order_id"]


def test_request_id_is_forwarded_to_inventory(stack):
    out = io.StringIO()
    configure_logging(stack.shop_tel, "INFO", stream=out)
    with TestClient(stack.shop_app) as client:
        client.get("/api/products", headers={"X-Request-ID": "req-fwd-1"})
        stack.flush()
    inv = [json.loads(line) for line in out.getvalue().splitlines()
           if '"service": "inventory"' in line and "GET /api/items" in line]
    assert inv and inv[0]["request_id"] == "req-fwd-1"


def test_log_lines_outside_requests_have_null_ids(stack):
    out = io.StringIO()
    configure_logging(stack.shop_tel, "INFO", stream=out)
    logging.getLogger("demo_app.test").info("hello")
    rec = json.loads(out.getvalue().splitlines()[-1])
    assert rec["message"] == "hello" and rec["trace_id"] is None and rec["request_id"] is None


@pytest.mark.parametrize("sampler, sampled_only, exported", [
    ("always_on", True, ["in a trace", "outside a trace"]),
    ("always_off", True, ["outside a trace"]),
    ("always_off", False, ["in a trace", "outside a trace"]),  # the default: every record
])
def test_otlp_logs_of_unsampled_traces_stay_on_stdout_when_asked(monkeypatch, sampler, sampled_only, exported):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    logs = InMemoryLogRecordExporter()
    tel = Telemetry("inventory", enabled=True, span_exporter=InMemorySpanExporter(), log_exporter=logs,
                    otlp_logs_sampled_only=sampled_only)
    out = io.StringIO()
    configure_logging(tel, "INFO", stream=out)
    log = logging.getLogger("demo_app.test")
    with tel.tracer.start_as_current_span("request"):
        log.info("in a trace")
    log.info("outside a trace")
    tel.logger_provider.force_flush()
    assert [r.log_record.body for r in logs.get_finished_logs()] == exported
    assert [json.loads(line)["message"] for line in out.getvalue().splitlines()] == ["in a trace", "outside a trace"]
    tel.shutdown()


def test_under_the_zero_code_agent_the_app_uses_the_agents_providers():
    """`opentelemetry-instrument` (make bench's peer) sets up the SDK and the OTLP log handler
    before the app runs: the app takes its tracer provider and keeps its log handler."""
    agent = pathlib.Path(sys.executable).with_name("opentelemetry-instrument")
    if not agent.exists():
        pytest.fail(f"{agent} missing: opentelemetry-distro is pinned in requirements-dev.txt")
    code = ("import logging; from demo_app.telemetry import Telemetry, configure_logging, _is_otlp_handler;"
            "t = Telemetry('inventory'); configure_logging(t);"
            "print(t.agent, type(t.tracer_provider).__module__,"
            " sum(map(_is_otlp_handler, logging.getLogger().handlers)))")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(SRC), "OTEL_TRACES_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    p = subprocess.run([str(agent), sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "opentelemetry.sdk.trace", "1"], p.stdout + p.stderr


def test_the_exception_fault_logs_a_real_traceback(stack):
    """The `exceptions` drill (exercise 12): a share of /api requests raise an error no
    handler expects; the service answers 500 and logs it with its traceback, on stdout and
    in the OTLP record's exception attributes (which Loki keeps as structured metadata)."""
    out = io.StringIO()
    configure_logging(stack.shop_tel, "INFO", stream=out)
    with TestClient(stack.shop_app) as client:
        r = client.post("/admin/faults", json={"exception_ratio": 1.0}, headers=AUTH)
        assert r.status_code == 200 and r.json()["exception_ratio"] == 1.0, r.text
        assert client.get("/api/products").status_code == 500
        client.delete("/admin/faults", headers=AUTH)
        assert client.get("/api/products").status_code == 200
        stack.flush()
        otlp = stack.logs.get_finished_logs()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    logged = [rec for rec in lines if rec["message"] == "unhandled error in GET /api/products"]
    assert len(logged) == 1 and logged[0]["level"] == "ERROR"
    assert "Traceback (most recent call last)" in logged[0]["exc_info"] and "SimulatedBug" in logged[0]["exc_info"]
    record = next(r.log_record for r in otlp if r.log_record.body == "unhandled error in GET /api/products")
    assert record.attributes["exception.type"] == "SimulatedBug"
    assert record.attributes["exception.stacktrace"].startswith("Traceback (most recent call last)")
