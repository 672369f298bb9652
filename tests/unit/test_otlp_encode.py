"""demo_app.otlp_encode must produce exactly what the SDK's OTLP span encoder does."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from demo_app import otlp_encode


def _spans():
    mem = InMemorySpanExporter()
    out = []
    for res in (Resource({"service.name": "a", "n": 1}), Resource({"service.name": "b"}, schema_url="https://x/1")):
        tp = TracerProvider(resource=res)
        tp.add_span_processor(SimpleSpanProcessor(mem))
        t1 = tp.get_tracer("one", "1.0", schema_url="https://s/1")
        t2 = tp.get_tracer("two")
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1),
                             trace_state=TraceState([("k", "v"), ("z", "1")]))
        with t1.start_as_current_span("GET /api/items", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
                                      kind=SpanKind.SERVER) as server:
            server.set_attributes({"http.method": "GET", "http.status_code": 200, "ok": True, "ratio": 0.5,
                                   "list": ["a", "b"], "ints": [1, 2], "empty": "", "big": 2**70})
            with t2.start_as_current_span("SELECT", kind=SpanKind.CLIENT,
                                          links=[Link(remote, {"why": "test"})]) as db:
                db.add_event("stock.reserved", {"demo.item.id": 3})
                db.record_exception(ValueError("boom"))
                db.set_status(Status(StatusCode.ERROR, "boom"))
        with t1.start_as_current_span("root") as root:
            root.set_status(Status(StatusCode.OK))
    out = list(mem.get_finished_spans())
    assert len(out) == 6
    return out


def test_same_bytes_as_sdk_encoder():
    spans = _spans()
    assert otlp_encode.encode_spans(spans).SerializeToString() == sdk_encode_spans(spans).SerializeToString()
    # Grouping keeps first-seen order, as the SDK does; a shuffled batch must match too.
    mixed = spans[::2] + spans[1::2]
    assert otlp_encode.encode_spans(mixed).SerializeToString() == sdk_encode_spans(mixed).SerializeToString()


def test_install_patches_the_http_exporter():
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    assert otlp_encode.install()
    assert trace_exporter.encode_spans is otlp_encode.encode_spans
