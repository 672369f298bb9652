"""A running stack, as the drills, the fault scheduler and the scorecard reach it: its
published ports (read back from compose), the fault switch, the alert APIs of Prometheus,
Alertmanager and the alert sink, and `docker compose` for stopping and starting services.

Standard library only.
"""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from scripts import compose_info, envfile  # noqa: E402

from .catalogue import Fault  # noqa: E402

# Services with a fault switch (/admin/faults).
FAULT_SERVICES = ("shop", "inventory")
# Services a fault may stop; a reset starts whichever of them exist and are stopped.
STOPPABLE = ("loadgen", "otel-collector", "loki", "jaeger")


def http(method: str, url: str, body: dict | None = None, token: str | None = None,
         timeout: float = 5, login: compose_info.Login | None = None) -> tuple[int, object]:
    """`token`: a bearer token; else `login`'s (the stack shared: STACK_AUTH), if any."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    elif login is not None and login.basic:
        req.add_header("Authorization", login.basic)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=login.context() if login else None) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def received_at(notification: dict) -> float:
    return datetime.fromisoformat(notification["received_at"].replace("Z", "+00:00")).timestamp()


class Target:
    """`compose`: the compose command of the stack (the user's: `docker compose`);
    `token`: the fault switch's token (default: DEMO_ADMIN_TOKEN from the environment or
    .env); `login`: HTTPS and the stack's login where it is shared (default: as .env says,
    STACK_AUTH). DRILL_<SERVICE>_URL (e.g. DRILL_ALERT_SINK_URL) overrides a service's URL."""

    def __init__(self, compose: list[str] | None = None, token: str | None = None,
                 login: compose_info.Login | None = None):
        self.compose_cmd = compose or ["docker", "compose"]
        self.token = token if token is not None else (
            os.environ.get("DEMO_ADMIN_TOKEN", "").strip() or envfile.read(REPO / ".env").get("DEMO_ADMIN_TOKEN", ""))
        self.login = login if login is not None else compose_info.Login.from_settings()
        self._urls: dict[str, str] = {}

    # ---- where things are
    def url(self, service: str) -> str:
        override = os.environ.get(f"DRILL_{service.upper().replace('-', '_')}_URL")
        if override:
            return override.rstrip("/")
        if service not in self._urls:
            ports = compose_info.published(self.compose_cmd).get(service)
            if not ports:
                raise RuntimeError(f"{service} publishes no port: is the stack up? (make drill-up)")
            address, port = next(iter(ports.values()))
            host = "127.0.0.1" if address in ("0.0.0.0", "") else address
            self._urls[service] = f"{self.login.scheme}://{host}:{port}"
        return self._urls[service]

    def get_json(self, service: str, path: str, **params) -> object:
        url = self.url(service) + path + ("?" + urllib.parse.urlencode(params) if params else "")
        status, payload = http("GET", url, login=self.login)
        if status != 200:
            raise RuntimeError(f"GET {url} -> HTTP {status}: {payload}")
        return payload

    # ---- docker compose
    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.compose_cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
        if args and args[0] in ("start", "up", "restart"):
            self._urls.clear()  # Docker may have picked new host ports
        return proc

    def states(self) -> dict[str, str]:
        return {r["Service"]: r.get("State", "") for r in compose_info.ps(self.compose_cmd)}

    # ---- faults
    def set_fault(self, service: str, body: dict | None) -> None:
        url = self.url(service) + "/admin/faults"
        method = "DELETE" if body is None else "POST"
        status, payload = http(method, url, body, self.token, login=self.login)
        if status >= 300:
            raise RuntimeError(f"{method} {url} -> HTTP {status}: {payload}")

    def apply(self, fault: Fault) -> None:
        for service, body in fault.faults.items():
            self.set_fault(service, body)
        if fault.stop:
            self.compose("stop", *fault.stop)

    def clear(self, fault: Fault) -> None:
        for service in fault.faults:
            self.set_fault(service, None)
        if fault.stop:
            self.compose("start", *fault.stop)

    def reset(self) -> list[str]:
        """Clears every fault switch and starts every stopped service a fault may stop;
        returns what it could not do (empty when all went well)."""
        problems = []
        for service in FAULT_SERVICES:
            try:
                self.set_fault(service, None)
            except Exception as e:  # noqa: BLE001 - reported to the caller
                problems.append(f"could not clear faults on {service}: {e}")
        stopped = [s for s, state in self.states().items() if s in STOPPABLE and state != "running"]
        if stopped:
            self.compose("start", *stopped)
        return problems

    # ---- alerts
    def prometheus_alerts(self) -> list[dict]:
        return self.get_json("prometheus", "/api/v1/alerts")["data"]["alerts"]

    def alertmanager_alerts(self) -> list[dict]:
        return self.get_json("alertmanager", "/api/v2/alerts")

    def sink_alerts(self, alertname: str | None = None, status: str | None = None, limit: int = 500) -> list[dict]:
        """Alerts the sink received by webhook (each with its notification's id and time)."""
        params = {k: v for k, v in (("alertname", alertname), ("status", status)) if v}
        return self.get_json("alert-sink", "/api/alerts", limit=limit, **params)["alerts"]

    def evaluation_interval(self) -> str | None:
        """The running Prometheus' global evaluation_interval, to warn about a slow profile."""
        try:
            text = self.get_json("prometheus", "/api/v1/status/config")["data"]["yaml"]
        except Exception:  # noqa: BLE001 - only a hint
            return None
        for line in text.splitlines():
            if line.strip().startswith("evaluation_interval:"):
                return line.split(":", 1)[1].strip()
        return None
