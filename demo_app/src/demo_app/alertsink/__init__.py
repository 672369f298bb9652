"""alert-sink: receives what Alertmanager sends a team (webhook v4 payloads, email over
SMTP, Slack incoming-webhook messages), keeps it bounded on a volume, and shows it.

Memory, worst case (the container's limit is 192 MiB, docker-compose.yml):
  process at rest (Python, FastAPI, OpenTelemetry SDK)            ~ 65 MiB
  the store: SQLite page cache only (store.py)                      2 MiB
  connections: max_connections 32, each holding at most a 256 KiB
    request body or a 1 MiB response (RESPONSE_MAX_BYTES)          32 MiB
  one request parsed or response built at a time (no await in
    between), Python objects ~10x the JSON: 2.5 MiB / 10 MiB        10 MiB
  SMTP: smtp_max_sessions 16 x 256 KiB, +3x for the one parsed     5 MiB
  telemetry queues (spans and log records waiting for export)     ~ 10 MiB
  total                                                          ~ 125 MiB
tests/unit/test_flood.py floods every path at once and checks the peak RSS against the
limit (measured: build/flood.json).
"""

from .app import create_app

__all__ = ["create_app"]
