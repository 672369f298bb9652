"""A flood per service: thousands of valid and invalid requests, concurrently, against the
real `demo-app ROLE` process (its own settings, telemetry on and exporting to a closed
port, so span and log queues fill to their bounds). Its resident memory is sampled
throughout and must stay below the service's mem_limit in docker-compose.yml; afterwards
it still answers, and what it held before the invalid part of the flood is still there.
The figures go to build/flood.json and the end of the run."""
from __future__ import annotations

import asyncio
import json
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import httpx
import psutil
import pytest
import yaml

from tests.tooling import COMPOSE_FILE, REPO

from .conftest import closed_port

RESULTS = REPO / "build" / "flood.json"
FIGURES: dict[str, dict] = {}
MiB = 1024 * 1024
SERVICES = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
JSON = {"Content-Type": "application/json"}


def mem_limit(service: str) -> int:
    raw = str(SERVICES[service]["mem_limit"]).lower()
    return int(raw.rstrip("bkmg")) * {"k": 1024, "m": MiB, "g": 1024 * MiB}.get(raw.rstrip("b")[-1], 1)


class RssSampler(threading.Thread):
    """Peak resident memory of a process, sampled every 20 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop_event.set()
        self.join(5)
        return self.peak


@contextmanager
def serve(role: str, tmp_path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m demo_app ROLE` on a free loopback port, as the image runs it."""
    port = closed_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "OTEL_"))},
        "PYTHONPATH": str(REPO / "demo_app" / "src"),
        "DEMO_HOST": "127.0.0.1", "DEMO_PORT": str(port), "DEMO_LOG_LEVEL": "ERROR",
        "OTEL_SERVICE_NAME": role,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",  # nobody there
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        **env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "demo_app", role], env=full_env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"{role} exited: {proc.stderr.read().decode()[-2000:]}"
            time.sleep(0.05)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _send(url: str, requests: list[tuple[str, str, dict]], concurrency: int = 32) -> dict[int, int]:
    """Sends (method, path, httpx kwargs) requests with bounded concurrency; status counts."""
    codes: dict[int, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker():
            while not queue.empty():
                method, path, kw = queue.get_nowait()
                try:
                    status = (await client.request(method, path, **kw)).status_code
                except httpx.HTTPError:
                    status = 0
                codes[status] = codes.get(status, 0) + 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return codes


def hostile(base: list[tuple[str, str, dict]], post_path: str) -> list[tuple[str, str, dict]]:
    """The classes of bad input of the hostile-input issue, against one POST route."""
    return [
        ("POST", post_path, {"content": b"[" * 200_000 + b"]" * 200_000, "headers": JSON}),  # deep
        ("POST", post_path, {"content": b"{" + b"x" * (3 * MiB), "headers": JSON}),  # huge
        ("POST", post_path, {"content": b"quantity=1", "headers": {"Content-Type": "text/plain"}}),
        ("POST", post_path, {"content": b"{not json", "headers": JSON}),
        ("POST", post_path, {"json": {"quantity": 10**30, "product_id": 10**30}}),
        ("GET", "/api/items/99999999999999999999999999", {}),
        ("GET", "/api/products/-1", {}),
    ] + base


def _flood(role: str, url: str, proc: subprocess.Popen, requests: list, rounds: int,
           concurrency: int = 32) -> dict:
    sampler = RssSampler(proc.pid)
    before = sampler.peak
    sampler.start()
    codes: dict[int, int] = {}
    try:
        for _ in range(rounds):
            for k, v in asyncio.run(_send(url, requests, concurrency)).items():
                codes[k] = codes.get(k, 0) + v
    finally:
        peak = sampler.stop()
    after = psutil.Process(proc.pid).memory_info().rss
    limit = mem_limit(role)
    figures = {"requests": sum(codes.values()), "statuses": dict(sorted(codes.items())),
               "rss_before_mib": round(before / MiB, 1), "rss_peak_mib": round(peak / MiB, 1),
               "rss_after_mib": round(after / MiB, 1), "mem_limit_mib": round(limit / MiB)}
    FIGURES[role] = figures
    assert proc.poll() is None, f"{role} died during the flood"
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert codes.get(0, 0) == 0, f"{role}: connections failed during the flood: {codes}"
    assert not [c for c in codes if c >= 500 and c != 503], f"{role} answered 5xx: {codes}"
    assert peak < limit, f"{role}: peak RSS {peak / MiB:.0f} MiB >= its mem_limit {limit / MiB:.0f} MiB"
    return figures


@pytest.fixture(scope="module", autouse=True)
def _record():
    yield
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(FIGURES, indent=2) + "\n")


def test_inventory_flood(tmp_path):
    with serve("inventory", tmp_path) as (url, proc):
        valid = [("GET", "/api/items", {}), ("GET", "/api/items/3", {}),
                 ("POST", "/api/items/2/reserve", {"json": {"quantity": 1}})]
        _flood("inventory", url, proc, hostile(valid * 30, "/api/items/1/reserve"), rounds=20)
        assert httpx.get(f"{url}/api/items", timeout=10).json()["count"] == 6  # the store is whole


def test_shop_flood(tmp_path):
    with serve("inventory", tmp_path) as (inv_url, _):
        with serve("shop", tmp_path, DEMO_INVENTORY_URL=inv_url) as (url, proc):
            valid = [("GET", "/api/products", {}), ("GET", "/api/products/2", {}),
                     ("POST", "/api/checkout", {"json": {"product_id": 3, "quantity": 1}})]
            _flood("shop", url, proc, hostile(valid * 30, "/api/checkout"), rounds=20)


def test_loadgen_flood(tmp_path):
    with serve("loadgen", tmp_path, DEMO_LOADGEN_TARGET=f"http://127.0.0.1:{closed_port()}") as (url, proc):
        _flood("loadgen", url, proc, hostile([("GET", "/metrics", {})] * 30, "/metrics"), rounds=20)


def _notification(i: int, size: int) -> dict:
    """A valid notification of about `size` bytes (an annotation value is capped at 64 KiB)."""
    parts = {f"part{k}": "x" * min(60_000, size - k * 60_000) for k in range(-(-size // 60_000))}
    return {"version": "4", "groupKey": f"g{i}", "status": "firing", "receiver": "flood",
            "alerts": [{"status": "firing", "labels": {"alertname": f"Flood{i % 500}"},
                        "annotations": parts, "startsAt": "2026-12-01T00:00:00Z"}]}


def test_alert_sink_flood(tmp_path):
    smtp_port = closed_port()
    env = {"DEMO_STORE_PATH": str(tmp_path / "sink.db"), "DEMO_SMTP_PORT": str(smtp_port)}
    with serve("alert-sink", tmp_path, **env) as (url, proc):
        kept = [_notification(i, 100) for i in range(5)]
        for n in kept:
            assert httpx.post(f"{url}/webhook", json=n, timeout=10).status_code == 200
        # Invalid input first: nothing the sink held may go.
        _flood("alert-sink", url, proc, hostile([("GET", "/api/alerts", {})] * 10, "/webhook"), rounds=10)
        held = httpx.get(f"{url}/api/notifications", timeout=10).json()
        assert held["stored_notifications"] == 5, held["stored_notifications"]
        invalid = FIGURES.pop("alert-sink")

        # Then the worst valid case: notifications near the body limit (the byte bound
        # drops the oldest), pages and API reads of a full store, large emails.
        big = [("POST", "/webhook", {"json": _notification(i, 240_000)}) for i in range(400)]
        reads = [("GET", "/", {}), ("GET", "/api/notifications?limit=1000", {}), ("GET", "/rows", {})] * 20
        stop = threading.Event()

        def mail() -> None:
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"] = "[FIRING:1] Flood", "a@b", "c@d"
            msg.set_content("y" * 200_000)
            while not stop.is_set():
                try:
                    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as s:
                        s.send_message(msg)
                except (smtplib.SMTPException, OSError):
                    time.sleep(0.05)

        mailers = [threading.Thread(target=mail, daemon=True) for _ in range(8)]
        for t in mailers:
            t.start()
        try:
            # 28 at a time: just under its max_connections (32), so all are served.
            figures = _flood("alert-sink", url, proc, big + reads, rounds=2, concurrency=28)
        finally:
            stop.set()
            for t in mailers:
                t.join(15)
        figures["invalid_part"] = invalid
        stored = httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["store"]
        figures["stored"] = stored
        assert stored["bytes"] <= 32 * MiB and stored["stored"] >= 1, stored
        with socket.create_connection(("127.0.0.1", smtp_port), timeout=5) as s:
            assert s.recv(100).startswith(b"220"), "the SMTP listener no longer answers"
