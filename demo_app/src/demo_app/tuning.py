"""Throughput tuning for the benchmark, off unless DEMO_TUNED=true.

The demo's code is read as the plain OpenTelemetry example, so its defaults are the SDK's.
`make bench` runs the inventory both ways ("ours" with these, "ours, plain" without); what
each setting buys is in demo_app/README.md ("Benchmark"), measured, not here.

- resource():     a Resource whose hash is computed once (the OTLP encoders group every
                  span and log record of a batch by resource, and Resource.__hash__
                  serialises all attributes on each call);
- BATCH:          bigger batch processor queues and batches than the SDK defaults (fewer
                  OTLP requests per item), only where OTEL_BSP_* / OTEL_BLRP_* set neither;
- gc():           start-up objects frozen out of the cyclic GC and a higher gen0 threshold
                  (the batch queues keep thousands of objects alive between exports);
- shared cursor:  the inventory reuses one traced DB-API cursor instead of one per query
                  (building the traced cursor proxy costs as much as a short query).
"""

from __future__ import annotations

import gc as _gc
import os

from opentelemetry.sdk.resources import Resource

BATCH = {"max_queue_size": 8192, "max_export_batch_size": 2048}


class _CachedHashResource(Resource):
    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            self._hash = super().__hash__()
            return self._hash


def resource(r: Resource) -> Resource:
    # Resources are immutable (attributes are a frozen mapping): the hash cannot go stale.
    return _CachedHashResource(r.attributes, r.schema_url)


def batch_kwargs(prefix: str) -> dict[str, int]:
    """BATCH, unless the environment sets either size (then OTEL_BSP_* / OTEL_BLRP_* keep
    full control, with the SDK's consistency checks)."""
    if os.environ.get(f"{prefix}_MAX_QUEUE_SIZE") or os.environ.get(f"{prefix}_MAX_EXPORT_BATCH_SIZE"):
        return {}
    return dict(BATCH)


def gc() -> None:
    _gc.collect()
    _gc.freeze()
    _gc.set_threshold(10_000, 10, 10)
