"""The e2e stacks: which compose services can run here, bringing them up on the real
compose files (compose_session: the default stack in tests/e2e, the scale-out profile in
tests/scale), and small helpers to talk to them over 127.0.0.1 only. The pytest hooks
(ordering, the summary) are in tests/e2e/conftest.py.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
from typing import Any, Callable, TypeVar
from urllib.parse import urlencode

import pytest
import requests
from testcontainers.compose import DockerCompose

from scripts import compose_info, envfile
from scripts.compose_plan import Plan, plan_stack, stand_ins
from tests.tooling import REPO

T = TypeVar("T")

# Every port of the e2e stack is published on loopback, on a free port Docker picks (an
# override of the compose files' `ports`, see compose_session()), so the suite runs beside
# a stack the user started with `make up`. The ports are read back from compose after
# `up` (ENDPOINTS), never typed here: docker-compose.yml is the one place they live.
HOST = "127.0.0.1"
ENDPOINTS: dict[str, dict[int, int]] = {}  # service -> {container port: host port}
# Which stack services each signal travels through: the service x signal matrix.
# A test names the services it needs (a subset of its signal's row, sometimes more).
SIGNALS: dict[str, tuple[str, ...]] = {
    "metrics": ("prometheus", "otel-collector", "shop", "inventory", "loadgen", "alert-sink"),
    "traces": ("jaeger", "otel-collector", "prometheus", "shop", "inventory"),
    "logs": ("loki", "otel-collector", "jaeger", "shop", "inventory"),
    "alerts": ("prometheus", "alertmanager", "alert-sink", "shop", "inventory", "loadgen"),
    "dashboards": ("grafana", "prometheus", "loki", "jaeger", "alertmanager", "otel-collector", "shop", "inventory"),
    "no-loss": ("jaeger", "otel-collector", "prometheus", "alertmanager", "alert-sink", "loki", "shop",
                "inventory", "loadgen"),
    "resilience": ("otel-collector", "prometheus", "shop", "inventory", "jaeger"),
    "restarts": ("prometheus", "jaeger", "alertmanager", "alert-sink", "otel-collector", "shop", "inventory", "loki"),
}


def matrix(started: list[str], columns: list[str]) -> list[str]:
    """The service x signal matrix as text: + needed and running, - needed but not started."""
    width = max(map(len, SIGNALS))
    lines = [" " * width + "  " + " ".join(columns)]
    for signal, needs in SIGNALS.items():
        cells = [("+" if c in started else "-") if c in needs else "." for c in columns]
        lines.append(signal.ljust(width) + "  " + " ".join(x.center(len(c)) for x, c in zip(cells, columns)))
    return lines
# What the session learns and prints at the end (and writes to build/).
MEASUREMENTS: dict[str, Any] = {}


class Timeout(AssertionError):
    pass


def poll_until(fn: Callable[[], T], timeout: float, message: str, interval: float = 1.0) -> T:
    """Call fn until it returns something truthy (returned) or `timeout` seconds pass,
    then fail with `message` and the last result or error seen. Exceptions from fn (a
    connection refused, a failed assert inside fn) count as "not yet"."""
    deadline = time.monotonic() + timeout
    last = "fn never ran"
    while True:
        try:
            result = fn()
            if result:
                return result
            last = f"last result: {result!r}"
        except Exception as exc:  # noqa: BLE001 - reported below, with the message
            last = f"last error: {type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout:.0f} s waiting until {message} ({last[:800]})")
        time.sleep(interval)


# ---------------------------------------------------------------- env for the compose run

def generated_env(project: str, drill: dict[str, str], workdir) -> dict[str, str]:
    """What `make up` would put into .env, with fresh secrets: .env.example's values
    (if present), generated GRAFANA_ADMIN_PASSWORD and DEMO_ADMIN_TOKEN, loopback binds;
    the secrets also as files under workdir/secrets (SECRETS_DIR), as `make up` does."""
    env = envfile.read(REPO / ".env.example")
    env.update(
        COMPOSE_PROJECT_NAME=project,
        GRAFANA_ADMIN_PASSWORD=secrets.token_urlsafe(18),
        DEMO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        **drill,
    )
    env["SECRETS_DIR"] = str(workdir / "secrets")
    envfile.write_secrets(env, workdir / "secrets")
    return env


def drill_profile() -> dict[str, str]:
    """The alert-drill profile (issue 5): faster scrape/evaluation/grouping, selected by
    env vars naming config files that live beside the normal ones."""
    env = {}
    for var, folder, default_name in (
        ("PROMETHEUS_CONFIG_FILE", "prometheus", "prometheus.drill.yml"),
        ("ALERTMANAGER_CONFIG_FILE", "alertmanager", "alertmanager.drill.yml"),
    ):
        if (REPO / folder / default_name).exists():
            env[var] = default_name
    return env


# ---------------------------------------------------------------- memory sampling

_UNITS = {"b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_size(text: str) -> float:
    """'12.5MiB' -> bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]+)\s*", text)
    if not m:
        raise ValueError(f"unparsable size {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


class MemorySampler(threading.Thread):
    """Samples `docker stats --no-stream` for the project's containers in the background
    and keeps each compose service's peak memory (and its limit)."""

    def __init__(self, project: str, interval: float = 5.0):
        super().__init__(name="e2e-docker-stats", daemon=True)
        self.project = project
        self.interval = interval
        self.peak: dict[str, float] = {}
        self.limit: dict[str, float] = {}
        self.samples = 0
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def sample(self) -> None:
        ps = subprocess.run(
            ["docker", "ps", "--filter", f"label=com.docker.compose.project={self.project}",
             "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}'],
            capture_output=True, text=True, timeout=30)
        ids = dict(line.split(" ", 1) for line in ps.stdout.split("\n") if " " in line)
        if not ids:
            return
        stats = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.MemUsage}}", *ids],
            capture_output=True, text=True, timeout=60)
        for line in stats.stdout.splitlines():
            cid, _, usage = line.partition("\t")
            svc = next((s for i, s in ids.items() if i.startswith(cid) or cid.startswith(i)), None)
            if svc is None or "/" not in usage:
                continue
            used, _, limit = usage.partition("/")
            try:
                self.peak[svc] = max(self.peak.get(svc, 0.0), parse_size(used))
                self.limit[svc] = parse_size(limit)
            except (ValueError, KeyError) as exc:
                self.errors.append(str(exc))
        self.samples += 1

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.sample()
            except (subprocess.SubprocessError, OSError) as exc:
                self.errors.append(str(exc))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=90)

    def report(self) -> dict[str, dict[str, float]]:
        return {svc: {"peak_mib": round(self.peak[svc] / 2**20, 1),
                      "limit_mib": round(self.limit.get(svc, 0) / 2**20, 1)}
                for svc in sorted(self.peak)}


# ---------------------------------------------------------------- talking to services

def url(service: str, path: str = "", port: int | None = None) -> str:
    """URL of a service's published port (`port`: the container port, needed only when
    the service publishes several)."""
    ports = ENDPOINTS.get(service)
    if not ports:
        raise AssertionError(f"{service} publishes no port in the e2e stack (published: {ENDPOINTS})")
    if port is None:
        if len(ports) != 1:
            raise AssertionError(f"{service} publishes {sorted(ports)}: say which")
        port = next(iter(ports))
    return f"http://{HOST}:{ports[port]}{path}"


def get_json(service: str, path: str, *, params: dict | None = None, timeout: float = 10,
             **kwargs) -> Any:
    r = requests.get(url(service, path), params=params, timeout=timeout, **kwargs)
    r.raise_for_status()
    return r.json()


def prom_query(expr: str, **params: Any) -> list[dict]:
    """Instant query; the result vector (raises on a query error)."""
    body = get_json("prometheus", "/api/v1/query", params={"query": expr, **params})
    assert body["status"] == "success", body
    return body["data"]["result"]


HEX32 = re.compile(r"[0-9a-f]{32}")


def exemplar_trace_ids(series: str, window_s: float = 900) -> list[str]:
    """trace_ids of the exemplars Prometheus holds for `series`, oldest first."""
    end = time.time()
    body = get_json("prometheus", "/api/v1/query_exemplars",
                    params={"query": series, "start": end - window_s, "end": end})
    assert body["status"] == "success", body
    found = sorted((float(e["timestamp"]), e["labels"].get("trace_id", ""))
                   for s in body["data"] for e in s["exemplars"])
    return [i for _, i in found if HEX32.fullmatch(i) and set(i) != {"0"}]


def new_trace_context() -> tuple[str, dict[str, str]]:
    """A fresh W3C trace id and the `traceparent` header that makes the service continue
    it (sampled), so the test knows the id of the trace its request produces."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def jaeger_trace(trace_id: str) -> dict | None:
    """The trace from Jaeger's query API, or None while it is not there (404)."""
    r = requests.get(url("jaeger", f"/api/traces/{trace_id}"), timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    data = r.json().get("data") or []
    return data[0] if data else None


def inside_json(stack: Stack, service: str, port: int, path: str, params: dict | None = None) -> Any:
    """GET a JSON API on a port the stack does not publish (Loki's: nothing a web page can
    reach), from inside the project's network."""
    query = ("?" + urlencode(params)) if params else ""
    return json.loads(compose_info.fetch_inside(stack.compose_cmd, f"http://{service}:{port}{path}{query}"))


def collector_metric(stack: Stack, name: str, service: str = "otel-collector", port: int = 8888,
                     **labels: str) -> float:
    """Sum of a component's self-metric `name` over the series carrying `labels`, read from
    its metrics endpoint (the collector's :8888) inside the network (the collector image
    has no shell)."""
    text = compose_info.fetch_inside(stack.compose_cmd, f"http://{service}:{port}/metrics", timeout=30)
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


class Stack:
    """The running compose project: what was planned, and `docker compose` commands on it
    (same project name, env file and compose file as the session's `up`)."""

    def __init__(self, compose_cmd: list[str], plan: Plan, env: dict[str, str]):
        self.compose_cmd = compose_cmd
        self.plan = plan
        self.env = env
        self.project = env["COMPOSE_PROJECT_NAME"]

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.compose_cmd, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
        if check and proc.returncode != 0:
            raise AssertionError(f"`docker compose {' '.join(args)}` failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        if args and args[0] in ("up", "start", "restart"):
            self.refresh_endpoints()  # Docker picks new host ports for (re)started containers
        return proc

    def containers(self) -> dict[str, dict]:
        """compose ps -a, by service: State, Health, Publishers, ..."""
        return {row["Service"]: row for row in compose_info.ps(self.compose_cmd)}

    def refresh_endpoints(self) -> None:
        """Reads the published ports back (they change when a service is recreated)."""
        ENDPOINTS.clear()
        for service, ports in compose_info.published(self.compose_cmd).items():
            ENDPOINTS[service] = {target: port for target, (_, port) in ports.items()}

    def running(self) -> set[str]:
        return {svc for svc, row in self.containers().items() if row.get("State") == "running"}

    def logs(self, *services: str, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), *services, check=False).stdout

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['DEMO_ADMIN_TOKEN']}"}

    @property
    def grafana_auth(self) -> tuple[str, str]:
        return (self.env.get("GRAFANA_ADMIN_USER", "admin"), self.env["GRAFANA_ADMIN_PASSWORD"])



# ---------------------------------------------------------------- one compose session

@contextlib.contextmanager
def compose_session(project: str, files: list, extra_env: dict[str, str], workdir, measurements: dict):
    """Brings up every service of `files` that can start here, in its own compose project
    with fresh secrets, every port on loopback where Docker picks the host port; yields
    the Stack and tears it down with its volumes (E2E_KEEP=1 leaves it running). The
    time to healthy, the stand-ins and each container's peak memory go to `measurements`."""
    plan = plan_stack(tuple(files))
    env = generated_env(project, extra_env, workdir)
    env_file = workdir / "session.env"
    overlay = workdir / "ports.yml"
    overlay.write_text(compose_info.ephemeral_ports_overlay(*files, host=HOST))
    # --env-file replaces the user's .env (their secrets and overrides stay out of the run);
    # the same values go into os.environ, which compose gives precedence anyway.
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    measurements.update(project=project, settings=extra_env)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        compose = DockerCompose(REPO, compose_file_name=[str(f) for f in [*files, overlay]],
                                env_file=str(env_file), wait=True)
        s = Stack(compose.docker_compose_command(), plan, env)
        s.compose("down", "--volumes", "--remove-orphans", check=False)  # leftovers of an aborted run
        if plan.build:  # images compose would build (no *_IMAGE given, nothing to pull)
            t0 = time.monotonic()
            built = s.compose("build", *plan.build, check=False, timeout=1800)
            measurements["build_s"] = round(time.monotonic() - t0, 1)
            if built.returncode != 0:
                why = (built.stderr.strip().splitlines() or ["?"])[-1][:300]
                for svc in plan.build:
                    plan.drop(svc, f"`docker compose build {svc}` failed: {why}")
        measurements.update(started=plan.start, not_started=plan.missing, one_shot=sorted(plan.one_shot),
                            stand_ins=stand_ins(plan))
        if not plan.start:
            pytest.skip(f"{project}: no service can start here: "
                        + "; ".join(f"{k}: {v}" for k, v in plan.missing.items()))
        # --no-deps: compose otherwise pulls every depends_on target, `required: false` ones
        # included (loki, jaeger), and fails when one cannot be pulled. All services that
        # can start are listed, so their depends_on conditions among each other still apply.
        compose.services = ["--no-deps", *plan.start]
        sampler = MemorySampler(project)
        sampler.start()
        t0 = time.monotonic()
        try:
            try:
                compose.start()  # `up --wait <services>`: returns once all are healthy/running
            except subprocess.CalledProcessError as exc:
                ps = s.compose("ps", "-a", check=False).stdout
                pytest.fail(f"`docker compose up --wait {' '.join(compose.services)}` failed:\n"
                            f"{(exc.stderr or b'').decode(errors='replace')[-3000:]}\n{ps}\n"
                            f"{s.logs(tail=30)[-6000:]}", pytrace=False)
            measurements["compose_up_to_healthy_s"] = round(time.monotonic() - t0, 1)
            s.up_at = time.time()
            measurements["compose_files"] = [f.name for f in files]
            s.refresh_endpoints()
            yield s
        finally:
            sampler.stop()
            measurements["peak_memory"] = sampler.report()
            measurements["memory_samples"] = sampler.samples
            if os.environ.get("E2E_KEEP"):
                print(f"\nE2E_KEEP set: project {project} left running (env file {env_file})")
            else:
                s.compose("down", "--volumes", "--remove-orphans", check=False, timeout=600)


@contextlib.contextmanager
def drill_stack(project: str, needed: tuple, workdir, measurements: dict):
    """A fresh stack of its own in the drill profile, with a drills Target on it (the
    training-ground and history tiers)."""
    from drills.target import Target
    from tests.tooling import require_image

    for var in needed:
        require_image(var)
    with compose_session(project, [REPO / "docker-compose.yml"], drill_profile(), workdir, measurements) as s:
        s.target = Target(s.compose_cmd, token=s.env["DEMO_ADMIN_TOKEN"])
        yield s
