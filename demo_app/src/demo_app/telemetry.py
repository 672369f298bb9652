"""OpenTelemetry setup (traces + logs over OTLP/HTTP) and JSON logging to stdout.

Everything is driven by the standard OTEL_* variables; the SDK and exporters read
them themselves (endpoint, headers, timeout, sampler, BSP/BLRP queue sizes ...).
Telemetry must never take a service down: spans and log records go through batch
processors with bounded queues (dropped when full), exports run on background
threads, and failed exports are counted in demo_telemetry_export_errors_total.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pythonjsonlogger.json import JsonFormatter

from . import __version__, tuning
from .metrics import ServiceMetrics

# Set by the HTTP middleware for the duration of a request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("service", default=None)

_log = logging.getLogger("demo_app.telemetry")


def telemetry_enabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "false").strip().lower() != "true"


def build_resource(role: str) -> Resource:
    resource = Resource.create({"service.version": __version__})
    name = str(resource.attributes.get("service.name", ""))
    if not name or name.startswith("unknown_service"):
        # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win; the role is the fallback.
        resource = resource.merge(Resource({"service.name": role}))
    return resource


class _CountingExporter:
    """Delegates to a real exporter and counts failed batches (never raises: an exporter
    bug must not kill the batch processor's worker thread)."""

    signal: str
    success: object
    failure: object

    def __init__(self, inner, metrics: ServiceMetrics):
        self._inner = inner
        self._errors = metrics.telemetry_export_errors.labels(metrics.service, self.signal)

    def export(self, batch: Sequence):
        try:
            result = self._inner.export(batch)
        except Exception:
            _log.exception("%s export raised", self.signal)
            result = self.failure
        if result is not self.success:
            self._errors.inc()
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingSpanExporter(_CountingExporter, SpanExporter):
    signal, success, failure = "traces", SpanExportResult.SUCCESS, SpanExportResult.FAILURE


class CountingLogExporter(_CountingExporter, LogRecordExporter):
    signal, success, failure = "logs", LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE


def _exporter_kind(signal: str) -> str:
    # OTEL_TRACES_EXPORTER / OTEL_LOGS_EXPORTER: "otlp" (default) or "none".
    return os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower() or "otlp"


class Telemetry:
    """Per-service telemetry: tracer provider, logger provider and Prometheus metrics."""

    def __init__(
        self,
        role: str,
        *,
        enabled: bool | None = None,
        span_exporter: SpanExporter | None = None,
        log_exporter: LogRecordExporter | None = None,
        otlp_logs_sampled_only: bool = False,
        tuned: bool = False,
    ):
        self.enabled = telemetry_enabled() if enabled is None else enabled
        # DEMO_TUNED: the benchmark's opt-in tuning (demo_app/tuning.py); off, the SDK's defaults.
        self.tuned = tuned
        self.resource = tuning.resource(build_resource(role)) if tuned else build_resource(role)
        self.service = str(self.resource.attributes["service.name"])
        self.role = role
        self.metrics = ServiceMetrics(self.service, role)
        self.tracer_provider: trace.TracerProvider
        self.logger_provider: LoggerProvider | None = None
        self.otlp_log_handler: logging.Handler | None = None
        # Telemetry misconfiguration degrades telemetry, never the service; logged at start.
        self.config_errors: list[str] = []
        # Run under `opentelemetry-instrument` (zero-code), the agent has set up the SDK,
        # its exporters and the OTLP log handler before this code runs: use what it built
        # (make bench compares the two setups).
        self.agent = self.enabled and not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        if not self.enabled:
            self.tracer_provider = trace.NoOpTracerProvider()
        elif self.agent:
            self.tracer_provider = trace.get_tracer_provider()
        else:
            tp = TracerProvider(resource=self.resource)
            if span_exporter is None and _exporter_kind("traces") == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                span_exporter = OTLPSpanExporter()
            if span_exporter is not None:
                # BatchSpanProcessor: bounded queue (OTEL_BSP_MAX_QUEUE_SIZE), drops when full.
                try:
                    tp.add_span_processor(BatchSpanProcessor(CountingSpanExporter(span_exporter, self.metrics),
                                                             **self._batch_kwargs("OTEL_BSP")))
                except ValueError as exc:  # e.g. OTEL_BSP_* inconsistent: serve without traces
                    self.config_errors.append(f"traces disabled: {exc}")
            self.tracer_provider = tp

            lp = LoggerProvider(resource=self.resource)
            if log_exporter is None and _exporter_kind("logs") == "otlp":
                from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

                log_exporter = OTLPLogExporter()
            if log_exporter is not None:
                try:
                    lp.add_log_record_processor(
                        BatchLogRecordProcessor(CountingLogExporter(log_exporter, self.metrics),
                                                **self._batch_kwargs("OTEL_BLRP"))
                    )
                    self.logger_provider = lp
                    self.otlp_log_handler = make_otlp_log_handler(lp, otlp_logs_sampled_only)
                except ValueError as exc:  # e.g. OTEL_BLRP_* inconsistent
                    self.config_errors.append(f"OTLP logs disabled: {exc}")
        self.tracer = self.tracer_provider.get_tracer("demo_app", __version__)

    def _batch_kwargs(self, prefix: str) -> dict[str, int]:
        return tuning.batch_kwargs(prefix) if self.tuned else {}

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.logger_provider):
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception:
                    _log.exception("telemetry shutdown failed")


# ---------------------------------------------------------------- logging


class DemoJsonFormatter(JsonFormatter):
    """JSON lines with the fields of docs/conventions.md."""

    def __init__(self, service: str):
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
        self.default_service = service

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        log_record.pop("color_message", None)  # uvicorn's ANSI copy of the message
        log_record["service"] = service_var.get() or self.default_service
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            log_record["trace_id"] = format(ctx.trace_id, "032x")
            log_record["span_id"] = format(ctx.span_id, "016x")
        else:
            log_record["trace_id"] = None
            log_record["span_id"] = None
        log_record["request_id"] = request_id_var.get()


class _OtlpRecordFilter(logging.Filter):
    """Adds request_id for the OTLP copy; keeps the exporters' own complaints out of
    the OTLP pipeline (they fail exactly when that pipeline is down: stdout has them).
    With sampled_only, a record written inside a trace that is not sampled stays on
    stdout only: with a low sampling ratio most of the OTLP log cost goes with it."""

    def __init__(self, sampled_only: bool = False):
        super().__init__()
        self.sampled_only = sampled_only

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("opentelemetry"):
            return False
        if self.sampled_only:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid and not ctx.trace_flags.sampled:
                return False
        rid = request_id_var.get()
        if rid is not None:
            record.request_id = rid
        return True


def make_otlp_log_handler(logger_provider: LoggerProvider, sampled_only: bool = False) -> logging.Handler:
    # The handler from opentelemetry-instrumentation-logging (the SDK's is deprecated);
    # trace_id/span_id travel in the OTLP record's own fields.
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    handler = LoggingHandler(logger_provider=logger_provider)
    handler.addFilter(_OtlpRecordFilter(sampled_only))
    return handler


def _is_otlp_handler(handler: logging.Handler) -> bool:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    return isinstance(handler, LoggingHandler)


def configure_logging(telemetry: Telemetry, level: str = "INFO", stream=None) -> None:
    """Root logger -> JSON on stdout, plus the same records over OTLP."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if not (telemetry.agent and _is_otlp_handler(h)):  # an agent's OTLP handler stays
            root.removeHandler(h)
    stdout = logging.StreamHandler(stream or sys.stdout)
    stdout.setFormatter(DemoJsonFormatter(telemetry.service))
    root.addHandler(stdout)
    if telemetry.otlp_log_handler is not None:
        root.addHandler(telemetry.otlp_log_handler)
    root.setLevel(level)
    for err in telemetry.config_errors:
        _log.error("telemetry configuration error: %s", err)
    # uvicorn's access log duplicates our request log; its error log is kept.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request at INFO; the spans and our request log cover that.
    logging.getLogger("httpx").setLevel(logging.WARNING)
