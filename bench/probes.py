"""What the benchmark reads from the components: the collectors' own counters (:8888),
and what each backend really holds of one step, counted by the step's run id (spans Jaeger
returns, samples Prometheus returns, log records Loki returns)."""
from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from typing import Callable

from scripts import compose_info

from .project import Project


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def counters(project: Project, service: str) -> dict[str, float]:
    """Every counter and gauge of an OTel collector's own metrics (:8888), summed by name
    and the exporter label (exporter="..." kept, everything else summed)."""
    out: dict[str, float] = {}
    for line in get(project.url(service, 8888) + "/metrics").decode().splitlines():
        m = re.match(r"^(otelcol_[a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m:
            continue
        exporter = re.search(r'exporter="([^"]+)"', m.group(2) or "")
        # Counters come with or without _total depending on the collector inside.
        key = m.group(1).removesuffix("_total") + (f"[{exporter.group(1)}]" if exporter else "")
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


def delta(after: dict[str, float], before: dict[str, float], prefix: str) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.split("[")[0] == prefix)


def drain(project: Project, service: str, timeout: float = 60) -> tuple[bool, float]:
    """Waits until the collector's queues are empty and its sent counters stop moving.
    Returns (drained, items still queued): not drained when `timeout` ran out first."""
    last = None
    deadline = time.monotonic() + timeout
    while True:
        c = counters(project, service)
        queued = delta(c, {}, "otelcol_exporter_queue_size")
        sent = tuple(sorted((k, v) for k, v in c.items() if k.startswith("otelcol_exporter_sent_")))
        if queued == 0 and sent == last:
            return True, 0.0
        if time.monotonic() >= deadline:
            return False, queued
        last = sent
        time.sleep(2)


def instant_query(project: Project, service: str, expr: str) -> float:
    """The sum of an instant query's result vector: PromQL on Prometheus' published port,
    LogQL on Loki's API from inside the network (Loki publishes no port)."""
    query = urllib.parse.urlencode({"query": expr})
    if service == "loki":
        text = compose_info.fetch_inside(project.cmd, f"http://loki:3100/loki/api/v1/query?{query}")
    else:
        text = get(project.url(service, 9090) + "/api/v1/query?" + query).decode()
    return sum(float(r["value"][1]) for r in json.loads(text)["data"]["result"])


def jaeger_spans(project: Project, run_id: str, start: float, end: float, slice_s: float = 2.0) -> int:
    """Spans of the step's traces that Jaeger's query API returns (the traces whose spans
    carry bench.run=run_id, searched slice by slice of their start time so that no answer
    holds a whole high-rate step). A trace found in two slices counts once."""
    spans_of: dict[str, int] = {}
    base = project.url("jaeger", 16686) + "/api/traces?"
    t = start
    while t < end:
        params = {"service": "telemetrygen", "tags": json.dumps({"bench.run": run_id}),
                  "start": int(t * 1e6), "end": int(min(t + slice_s, end) * 1e6), "limit": 10_000_000}
        body = json.loads(get(base + urllib.parse.urlencode(params), timeout=300))
        for trace in body.get("data") or []:
            spans_of[trace["traceID"]] = max(spans_of.get(trace["traceID"], 0), len(trace["spans"]))
        t += slice_s
    return sum(spans_of.values())


def settled_count(count: Callable[[], float], expected: float, timeout: float = 30) -> float:
    """count() once a second until it equals `expected`, or it stops changing for 5 s
    after `timeout`, whichever comes first: a backend that batches stores the last items a
    little after the collector sent them. The count it ends on (more than expected is
    reported as it is: a duplicate is not an arrival)."""
    deadline = time.monotonic() + timeout
    last, same_since = None, time.monotonic()
    while True:
        n = count()
        if n == expected:
            return n
        if n != last:
            last, same_since = n, time.monotonic()
        elif time.monotonic() >= deadline and time.monotonic() - same_since >= 5:
            return n
        time.sleep(1)
