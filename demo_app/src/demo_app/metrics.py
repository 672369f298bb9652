"""Prometheus metrics, named exactly as docs/conventions.md says.

Each service gets its own CollectorRegistry so that several apps can live in one
process (the unit tests run shop and inventory side by side).
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.exposition import choose_encoder

from . import __version__

# *_created series add nothing for our dashboards and double the sample count.
disable_created_metrics()

# Buckets from 5 ms to 10 s: the fault switch adds up to 10 s of latency.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BoundedLabel:
    """Maps client-chosen label values onto a bounded set: the first `limit` distinct
    values (up to 64 characters each) keep their name, any later one becomes "other"."""

    OTHER = "other"

    def __init__(self, limit: int):
        self.limit = limit
        self.seen: set[str] = set()

    def value(self, raw: str) -> str:
        v = raw[:64] or "none"
        if v in self.seen:
            return v
        if len(self.seen) < self.limit:
            self.seen.add(v)
            return v
        return self.OTHER


class ServiceMetrics:
    def __init__(self, service: str, role: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.telemetry_export_errors = Counter(
            "demo_telemetry_export_errors", "Failed OTLP export batches",
            ["service", "signal"], registry=r,
        )
        for signal in ("traces", "logs"):
            self.telemetry_export_errors.labels(service, signal)
        self.build_info = Info("demo_build", "Build information", ["service"], registry=r)
        self.build_info.labels(service).info(
            {"version": __version__, "python_version": platform.python_version()}
        )
        if role in ("shop", "inventory"):
            self.http_requests = Counter(
                "demo_http_requests", "HTTP requests served",
                ["service", "route", "method", "status_code"], registry=r,
            )
            self.http_duration = Histogram(
                "demo_http_request_duration_seconds", "HTTP request latency",
                ["service", "route", "method"], buckets=LATENCY_BUCKETS, registry=r,
            )
            self.in_flight = Gauge(
                "demo_http_requests_in_flight", "HTTP requests being served",
                ["service"], registry=r,
            )
            self.in_flight.labels(service)
            self.readiness = Gauge(
                "demo_readiness", "1 when the readiness check passes, 0 when not",
                ["service", "check"], registry=r,
            )
        if role == "shop":
            self.orders = Counter("demo_orders", "Checkout outcomes", ["result"], registry=r)
            for result in ("placed", "rejected", "failed"):
                self.orders.labels(result)
        if role == "inventory":
            self.stock_level = Gauge("demo_stock_level", "Units in stock", ["item"], registry=r)
            # A batch job's two standard signals: when it last succeeded, and its runs.
            self.job_last_success = Gauge("demo_job_last_success_timestamp_seconds",
                                          "Unix time of the job's last successful run", ["job_name"], registry=r)
            self.job_runs = Counter("demo_job_runs", "Runs of the job by result", ["job_name", "result"], registry=r)
            for result in ("success", "failure"):
                self.job_runs.labels("stock-audit", result)
        if role == "loadgen":
            self.loadgen_requests = Counter(
                "demo_loadgen_requests", "Requests sent by the load generator",
                ["endpoint", "outcome"], registry=r,
            )
        if role == "alert-sink":
            # Label values from clients are bounded (BoundedLabel): a client cannot
            # create series at will.
            self.receivers = BoundedLabel(20)
            self.alertnames = BoundedLabel(200)
            self.notifications = Counter(
                "alert_sink_notifications", "Notifications received and stored",
                ["channel", "receiver", "status"], registry=r,
            )
            self.alerts = Counter(
                "alert_sink_alerts", "Alerts received inside webhook notifications",
                ["alertname", "status"], registry=r,
            )
            self.rejected = Counter(
                "alert_sink_rejected", "Requests and messages refused", ["channel", "reason"], registry=r,
            )
            self.evicted = Counter(
                "alert_sink_evicted", "Notifications dropped from the store to keep it in its bounds",
                ["reason"], registry=r,  # repeat | count | bytes
            )
            self.stored = Gauge(
                "alert_sink_stored_notifications", "Notifications kept (on the volume)", registry=r,
            )
            self.stored_bytes = Gauge(
                "alert_sink_stored_bytes", "Bytes of notifications kept (on the volume)", registry=r,
            )

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """Exposition in the format the scraper asks for (OpenMetrics carries exemplars)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
