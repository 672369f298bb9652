"""The scale-out profile, run for real: the collector in two tiers (traces stay whole per
gateway; tail sampling keeps every error trace; a stopped gateway's share moves to the
other), Alertmanager as an HA pair (one notification per group, delivered with one of
them down) and Prometheus replicas behind Thanos (deduplicated, still answering with one
replica down, an uploaded block readable). Figures go to the e2e summary."""
from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until
from tests.e2e.test_no_loss import traced_requests

from .conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.signal("scale-out")]
GATEWAYS = ("otel-gateway-a", "otel-gateway-b")


def gateway_of(trace: dict) -> set[str]:
    """The gateways that handled a trace's spans (resource attribute collector.gateway)."""
    return {t["value"] for p in trace["processes"].values() for t in p.get("tags") or []
            if t["key"] == "collector.gateway"}


def span_counters_at_rest(stack: st.Stack) -> dict[str, float]:
    """Spans accepted by each gateway and sent by the agent, read once two snapshots 3 s
    apart agree: the reads are sequential execs, so a batch in flight between them would
    be counted at one end and not the other."""
    def snapshot() -> dict[str, float]:
        counts = {g: clients.collector_metric(stack, "otelcol_receiver_accepted_spans", g) for g in GATEWAYS}
        counts["agent"] = clients.collector_metric(stack, "otelcol_exporter_sent_spans")
        return counts

    last = [snapshot()]

    def settled() -> dict[str, float] | None:
        time.sleep(3)
        now = snapshot()
        stable, last[0] = now == last[0], now
        return now if stable else None

    return poll_until(settled, 90, "the span counters of agent and gateways stop moving", interval=0)


@contextlib.contextmanager
def errors_on(stack: st.Stack):
    """shop answers every request with a 500 while the block runs (tail sampling keeps every
    error trace)."""
    faults = clients.url("shop", "/admin/faults")
    assert requests.post(faults, json={"error_ratio": 1.0}, headers=stack.admin_headers, timeout=10).ok
    try:
        yield
    finally:
        requests.delete(faults, headers=stack.admin_headers, timeout=10)


def send_error_requests(seconds: float, rate: float) -> list[str]:
    """Trace ids of shop requests sent for `seconds` (errors_on must be in force); every
    one must have been answered 500, so every one counts."""
    ids: list[str] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        trace_id, headers = clients.new_trace_context()
        code = requests.get(clients.url("shop", "/api/products/1"), headers=headers, timeout=10).status_code
        assert code == 500, f"shop answered {code} with its error fault on"
        ids.append(trace_id)
        time.sleep(1 / rate)
    return ids


def error_traces(stack: st.Stack, seconds: float, rate: float) -> list[str]:
    """Traces of shop requests answered 500, ids known."""
    with errors_on(stack):
        return send_error_requests(seconds, rate)


def stored(trace_ids: list[str]) -> dict[str, dict]:
    return {t: tr for t in trace_ids if (tr := clients.jaeger_trace(t))}


def test_every_span_of_a_trace_reaches_one_gateway(scale: st.Stack) -> None:
    scale.compose("stop", "loadgen")  # a quiet window: only the test's traffic
    try:
        time.sleep(10)
        before = span_counters_at_rest(scale)
        ids = error_traces(scale, seconds=20, rate=5)  # errors: tail sampling keeps them all
        time.sleep(15)  # SDK export, agent, gateways' decision_wait
        poll_until(lambda: len(stored(ids)) == len(ids), 120,
                      f"all {len(ids)} error traces are in Jaeger", interval=5)
        traces = stored(ids)
        after = span_counters_at_rest(scale)
        per_gateway = {g: after[g] - before[g] for g in GATEWAYS}
        agent_sent = after["agent"] - before["agent"]
    finally:
        scale.compose("start", "loadgen")
    split = {t: gateway_of(tr) for t, tr in traces.items() if len(gateway_of(tr)) != 1}
    assert not split, f"traces split across gateways: {split}"
    traces_per_gateway = {g: sum(1 for tr in traces.values() if gateway_of(tr) == {g}) for g in GATEWAYS}
    FIGURES["spans per gateway"] = {g: int(v) for g, v in per_gateway.items()}
    FIGURES["traces per gateway"] = traces_per_gateway
    FIGURES["spans sent by the agent"] = int(agent_sent)
    assert sum(per_gateway.values()) == agent_sent, (per_gateway, agent_sent)
    assert all(traces_per_gateway.values()), f"one gateway got nothing: {traces_per_gateway}"


def test_tail_sampling_keeps_every_error_trace_and_a_share_of_the_rest(scale: st.Stack) -> None:
    errors = error_traces(scale, seconds=15, rate=5)
    ok = traced_requests(seconds=30, rate=8)
    time.sleep(15)
    poll_until(lambda: len(stored(errors)) == len(errors), 120,
                  f"every one of {len(errors)} error traces is kept", interval=5)
    kept_ok = len(stored(ok))
    FIGURES["tail sampling"] = {"error traces": f"{len(errors)}/{len(errors)} kept",
                                "other traces": f"{kept_ok}/{len(ok)} kept (policy: 10 %)"}
    # 10 % of ~240: a binomial draw; outside 2..25 % would mean another policy is at work.
    assert 0.02 * len(ok) <= kept_ok <= 0.25 * len(ok), f"{kept_ok} of {len(ok)} ordinary traces kept"


def test_a_gateway_stopped_under_load_loses_nothing(scale: st.Stack) -> None:
    """Error traces (all kept by tail sampling) are sent before, during and after a gateway
    is stopped: the window where loss would happen. Every one is stored; those sent once
    the ring has dropped the stopped gateway all went through the other."""
    sent: list[tuple[float, str]] = []  # (when, trace id)
    problems: list[str] = []
    sending = threading.Event()
    sending.set()

    def send() -> None:
        while sending.is_set():
            try:
                sent.extend((time.monotonic(), t) for t in send_error_requests(seconds=1, rate=5))
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(repr(exc))
                return

    sender = threading.Thread(target=send, daemon=True)
    with errors_on(scale):
        sender.start()
        try:
            try:
                time.sleep(10)
                scale.compose("stop", "otel-gateway-b")
                stopped = time.monotonic()
                # When the agent's resolver has dropped it (every 5 s; later on a busy machine):
                # from then on every trace must go through the other gateway.
                poll_until(lambda: clients.collector_metric(scale, "otelcol_loadbalancer_num_backends") == 1, 120,
                              "the agent's ring drops the stopped gateway")
                ring_changed = time.monotonic()
                # Longer than the agent's sub-exporter retries (15 s): a batch still held for
                # the stopped gateway is dropped by then, not rescued by its restart below.
                time.sleep(20)
            finally:
                sending.clear()
                sender.join(30)
            # While the gateway is still down (a restarted one rejoins the ring, and spans the
            # demo exports a few seconds late would then go to it): what was sent once the ring
            # had changed is stored, all of it through the other gateway.
            assert not problems, problems
            after = [t for when, t in sent if when > ring_changed + 2]  # a batch takes 1 s
            poll_until(lambda: len(stored(after)) == len(after), 240,
                          f"the {len(after)} traces sent once the ring had changed are in Jaeger", interval=5)
            through = {g for t in after for g in gateway_of(stored(after)[t])}
        finally:
            scale.compose("start", "otel-gateway-b")  # it drains what it queued before it stopped
    ids = [t for _, t in sent]
    def all_stored() -> bool:
        have = stored(ids)
        missing = [t for t in ids if t not in have]
        assert not missing, f"{len(missing)} missing, e.g. {missing[:3]}"
        return True

    poll_until(all_stored, 240, f"every one of the {len(ids)} error traces sent around the gateway's stop is in Jaeger",
               interval=5)
    FIGURES["gateway stopped under load"] = (f"{len(ids)}/{len(ids)} traces stored; the ring changed "
                                             f"{ring_changed - stopped:.0f} s after the stop; the {len(after)} sent once the "
                                             f"ring had changed went through {sorted(through)}")
    assert after and through == {"otel-gateway-a"}, through


def _post_alert(stack: st.Stack, services: tuple[str, ...], alertname: str) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": {"alertname": alertname, "severity": "warning", "service": "scale-test"},
             "annotations": {"summary": f"{alertname} (scale-out test)"},
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat()}]
    for svc in services:  # as Prometheus does: every replica sends to every Alertmanager
        assert requests.post(clients.url(svc, "/api/v2/alerts"), json=body, timeout=10).ok


def _webhook_notifications(alertname: str) -> list[dict]:
    body = clients.get_json("alert-sink", "/api/notifications", params={"channel": "webhook", "limit": 1000})
    return [n for n in body["notifications"] if any(a["alertname"] == alertname for a in n["alerts"])]


def test_alertmanager_pair_notifies_once_and_survives_one_down(scale: st.Stack) -> None:
    targets = clients.get_json("prometheus", "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert len(targets) == 2, f"Prometheus sends to {targets}"
    name = f"ScaleHA{int(time.time())}"
    _post_alert(scale, ("alertmanager", "alertmanager-b"), name)
    poll_until(lambda: _webhook_notifications(name), 60, "the alert's notification reaches the sink")
    time.sleep(20)  # both peers' group_wait and a group_interval: a duplicate would be here
    once = len(_webhook_notifications(name))
    FIGURES["Alertmanager pair: notifications per group"] = once
    assert once == 1, f"{once} notifications for one alert group from the HA pair"

    scale.compose("stop", "alertmanager")
    try:
        other = name + "OneDown"
        _post_alert(scale, ("alertmanager-b",), other)
        poll_until(lambda: _webhook_notifications(other), 60,
                      "with one Alertmanager stopped, the other still notifies")
    finally:
        scale.compose("start", "alertmanager")


def thanos(expr: str, dedup: bool = True) -> list[dict]:
    body = clients.get_json("thanos-query", "/api/v1/query",
                       params={"query": expr, "dedup": str(dedup).lower()})
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_thanos_query_deduplicates_and_answers_with_one_replica_down(scale: st.Stack) -> None:
    expr = 'up{job="shop"}'
    def both() -> bool:
        # The compactor's merged blocks carry no replica label: once one covers the last
        # minutes, the store gateway answers a third, unlabelled series.
        seen = sorted(r["metric"].get("replica", "none") for r in thanos(expr, dedup=False))
        if {"a", "b"} <= set(seen):
            return True
        stores = clients.get_json("thanos-query", "/api/v1/stores")["data"]
        health = {s["name"]: s.get("lastError") or "ok" for group in stores.values() for s in group}
        raise AssertionError(f"replicas answering: {seen}; Thanos Query's stores: {health}")

    # A sidecar joins once its Prometheus is ready (WAL replayed): minutes on a busy machine.
    poll_until(both, 300, f"both replicas' {expr} via Thanos Query", interval=5)
    raw, deduped = thanos(expr, dedup=False), thanos(expr)
    FIGURES["Thanos: series of up{job=shop}"] = f"{len(raw)} before dedup, {len(deduped)} after"
    assert {"a", "b"} <= {r["metric"].get("replica") for r in raw}, raw
    assert len(deduped) == 1 and "replica" not in deduped[0]["metric"], deduped
    scale.compose("stop", "prometheus-b")
    try:
        poll_until(lambda: len(thanos(expr)) == 1 and float(thanos(expr)[0]["value"][1]) == 1, 60,
                      "Thanos Query still answers with replica b stopped")
    finally:
        scale.compose("start", "prometheus-b")


def test_an_uploaded_block_is_readable(scale: st.Stack) -> None:
    """The sidecars upload finished blocks (2 minutes here) to the bucket; the store
    gateway serves them: a query answered by it alone returns data."""
    def loaded() -> dict:
        stores = clients.get_json("thanos-query", "/api/v1/stores")["data"]
        store = [s for s in stores.get("store", []) if "thanos-store" in s["name"]]
        # An empty store gateway reports minTime > maxTime (the int64 extremes).
        assert store and 0 < store[0]["minTime"] < store[0]["maxTime"] <= time.time() * 1000, (
            f"the store gateway holds no block yet: {store}")
        return store[0]

    store = poll_until(loaded, 600, "a block is uploaded and the store gateway serves it", interval=10)
    start, end = store["minTime"] / 1000, store["maxTime"] / 1000
    body = clients.get_json("thanos-query", "/api/v1/query_range", params={
        "query": 'up{job="shop"}', "start": start, "end": end, "step": 15, "dedup": "true",
        "storeMatch[]": '{__address__="thanos-store:10901"}'})
    samples = sum(len(r["values"]) for r in body["data"]["result"])
    FIGURES["Thanos: samples read from the bucket"] = samples
    assert samples > 0, body


def compactor_metric(scale: st.Stack, name: str) -> float:
    return clients.collector_metric(scale, name, service="thanos-compact", port=10902)


def test_the_compactor_keeps_one_copy_of_each_block(scale: st.Stack) -> None:
    """Both sidecars upload their replica's copy of each block; the compactor merges the
    copies on `replica` (a vertical compaction), so the bucket keeps each range once, and
    never halts (a halted compactor stops retention too)."""
    merged = poll_until(lambda: compactor_metric(scale, "thanos_compact_group_vertical_compactions_total") or None,
                        600, "the compactor merges the replicas' copies of a block", interval=10)
    FIGURES["Thanos compactor: vertical compactions (replica copies merged)"] = merged
    assert compactor_metric(scale, "thanos_compact_halted") == 0


def test_the_compactor_applies_retention_to_the_bucket(scale: st.Stack) -> None:
    """THANOS_RETENTION bounds the bucket: a block whose newest sample is older than it
    (6 minutes here) is marked for deletion, to be deleted THANOS_DELETE_DELAY later. The
    compactor counts every deletion mark alike (also those of blocks it compacted away), so
    the marks' own reasons, in the bucket, tell retention apart."""
    def by_retention() -> list[str]:
        out = scale.compose("exec", "-T", "thanos-compact", "sh", "-c",
                            "grep -l 'exceeding retention' /var/lib/thanos/bucket/*/deletion-mark.json || true")
        return out.stdout.split()

    marked = poll_until(by_retention, 900, "the compactor marks a block past THANOS_RETENTION", interval=15)
    FIGURES["Thanos compactor: blocks marked by retention (6m)"] = len(marked)
    assert compactor_metric(scale, "thanos_compact_halted") == 0
