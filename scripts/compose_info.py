#!/usr/bin/env python3
"""What the Makefile, the drills and the tests ask `docker compose` about the stack.

    python3 scripts/compose_info.py files   the compose files for this engine (COMPOSE_FILE)
    python3 scripts/compose_info.py urls [COMPOSE...]
                                            every published endpoint of the running stack
    python3 scripts/compose_info.py why [COMPOSE...]
                                            which services are not running or not healthy,
                                            and their last log lines (after a failed `make up`;
                                            COMPOSE: the compose command, `docker compose`)

Ports are read back from compose (`docker compose ps`), never typed twice: the compose
file is the one place a port is published.

Standard library only (runs before the project's virtual environment exists).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

try:
    from scripts import envfile
except ImportError:  # run as a script: scripts/ is on the path
    import envfile

REPO = Path(__file__).resolve().parents[1]
BASE_FILE = "docker-compose.yml"
# Engines from 25 (API 1.44) probe every second during start_period (healthcheck
# start_interval), so `up --wait` returns seconds after a service is ready; older engines
# refuse the key, so it lives in an overlay added only where it works.
FAST_HEALTH_FILE = "docker-compose.fast-health.yml"
FAST_HEALTH_API = (1, 44)
# A copy of the telemetry to the user's own backend, each switched on by its setting
# (README, "Send a copy to your own backend"); nothing changes while they are unset.
FORWARD_FILES = {
    "FORWARD_OTLP_ENDPOINT": "docker-compose.forward-otlp.yml",
    "PROMETHEUS_REMOTE_WRITE_URL": "docker-compose.remote-write.yml",
}
# The user's own additions, loaded last (it ships empty).
EXTRAS_FILE = "docker-compose.extras.yml"
# What each published endpoint is for (make urls).
ROLES = {
    "grafana": "dashboards, Explore (login: GRAFANA_ADMIN_USER / GRAFANA_ADMIN_PASSWORD in .env)",
    "prometheus": "metrics, rules, alerts, targets",
    "alertmanager": "alert routing, silences",
    "jaeger": "traces, Monitor tab",
    "alert-sink": "notifications Alertmanager delivered; runbooks at /runbooks/",
    "shop": "demo front service (/api/products)",
    "inventory": "demo back service (/api/items)",
    "otel-collector": "OTLP in: send your own telemetry here",
}
NON_HTTP = {4317}  # OTLP/gRPC


def env_default(text: str, var: str) -> str:
    """The default a config text gives VAR: `${VAR:-default}` (compose, Loki) or
    `${env:VAR:-default}` (the OpenTelemetry collector, Jaeger); "" when it gives none."""
    m = re.search(r"\$\{(?:env:)?" + re.escape(var) + r":-([^}]*)\}", text)
    return m.group(1) if m else ""


def engine_api_version() -> tuple[int, ...] | None:
    try:
        out = subprocess.run(["docker", "version", "-f", "{{.Server.APIVersion}}"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        return tuple(int(p) for p in out.split("."))
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def settings(root: Path = REPO) -> dict[str, str]:
    """The user's settings: .env, with the environment over it (as compose reads them)."""
    return {**envfile.read(root / ".env"), **os.environ}


def compose_files(root: Path = REPO, user: dict[str, str] | None = None, extras: bool = True) -> list[str]:
    """The compose files `make up` loads, in order: the stack; faster healthchecks where the
    engine takes them; a forwarding overlay per forwarding setting the user made; and the
    user's own additions last. `user` (default: settings()) decides the overlays; the test
    tiers pass user={}, extras=False and get the stack as shipped, whatever the user set."""
    user = settings(root) if user is None else user
    files = [BASE_FILE]
    api = engine_api_version()
    if api is not None and api >= FAST_HEALTH_API and (root / FAST_HEALTH_FILE).exists():
        files.append(FAST_HEALTH_FILE)
    files += [f for var, f in FORWARD_FILES.items() if user.get(var)]
    if extras and (root / EXTRAS_FILE).exists():
        files.append(EXTRAS_FILE)
    return files


def ps(compose: list[str] | None = None, cwd: Path = REPO) -> list[dict]:
    """`docker compose ps --format json` rows (one JSON object per line, or one list)."""
    cmd = compose or ["docker", "compose"]
    out = subprocess.run([*cmd, "ps", "--all", "--format", "json"], capture_output=True,
                         text=True, timeout=60, cwd=cwd, check=True).stdout
    rows: list[dict] = []
    for line in out.splitlines():
        if line.strip():
            data = json.loads(line)
            rows += data if isinstance(data, list) else [data]
    return rows


def published(compose: list[str] | None = None, cwd: Path = REPO) -> dict[str, dict[int, tuple[str, int]]]:
    """service -> {container port: (host address, host port)} of the running project."""
    out: dict[str, dict[int, tuple[str, int]]] = {}
    for row in ps(compose, cwd):
        for p in row.get("Publishers") or []:
            if p.get("PublishedPort"):
                host = p.get("URL") or "127.0.0.1"
                if ":" in host:  # the IPv6 twin of an IPv4 binding
                    continue
                out.setdefault(row["Service"], {})[int(p["TargetPort"])] = (host, int(p["PublishedPort"]))
    return out


def fetch_inside(compose: list[str], url: str, via: str = "prometheus", timeout: float = 60) -> str:
    """GET `url` from inside the project's network (an unpublished port, such as Loki's or
    a collector's own metrics), through the busybox wget of the `via` service's image."""
    p = subprocess.run([*compose, "exec", "-T", via, "wget", "-q", "-O", "-", url], capture_output=True,
                       text=True, timeout=timeout, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"GET {url} from inside {via} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return p.stdout


def load_compose_yaml(path: Path) -> dict:
    """A compose file as data; compose's own tags (!reset, !override) are read as the
    values they carry. Needs PyYAML (the project's venv has it)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", untagged)
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass


def ephemeral_ports_overlay(*compose_files: Path, host: str = "127.0.0.1") -> str:
    """A compose overlay re-publishing every port of the compose files (docker-compose.yml
    by default) on `host` with a host port Docker picks, so a second project (the tests',
    the benchmark's) runs beside a stack that holds the usual ports, on Linux and Docker
    Desktop alike. Needs PyYAML (the project's venv has it)."""
    targets: dict[str, list[str]] = {}
    for f in compose_files or (REPO / BASE_FILE,):
        for name, svc in load_compose_yaml(Path(f))["services"].items():
            ports = svc.get("ports")
            if ports is not None:  # a later file's list replaces an earlier one's
                targets[name] = [str(spec).rsplit(":", 1)[1] for spec in ports]
    lines = ["# Generated by scripts/compose_info.py for one run.", "services:"]
    for name, ports in targets.items():
        if ports:
            lines += [f"  {name}:", "    ports: !override"]
            lines += [f'      - "{host}::{target}"' for target in ports]
    return "\n".join(lines) + "\n"


def browser_host(address: str) -> str:
    """The host part of a URL for a published address (0.0.0.0 means this machine)."""
    stack_host = os.environ.get("STACK_HOST")
    if stack_host:
        return stack_host
    return "localhost" if address in ("127.0.0.1", "0.0.0.0", "") else address


def print_urls(compose: list[str] | None = None) -> int:
    try:
        ports = published(compose or None)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"cannot ask docker compose for the published ports: {exc}", file=sys.stderr)
        return 1
    if not ports:
        print("Nothing published: the stack is not running (make up).")
        return 0
    for service in sorted(ports, key=lambda s: (s not in ROLES, list(ROLES).index(s) if s in ROLES else 0, s)):
        for target, (address, port) in sorted(ports[service].items()):
            host = browser_host(address)
            where = f"{host}:{port}" if target in NON_HTTP else f"http://{host}:{port}"
            print(f"{service:<15}{where:<28}{ROLES.get(service, '')}")
    return 0


def not_ready(rows: list[dict], inspected: dict[str, dict]) -> list[dict]:
    """Rows of services that are neither running healthy nor a one-shot that exited 0.
    `inspected`: `docker inspect` of each row's container, by id. Health is read there, against
    the healthcheck the container declares: for a moment after a restart a container runs with
    no health status yet, and `ps` then shows it as if it had no healthcheck at all."""
    bad = []
    for row in rows:
        info = inspected.get(row.get("ID", ""), {})
        state = info.get("State") or {}
        status = state.get("Status", row.get("State", ""))
        if status == "exited" and state.get("ExitCode", row.get("ExitCode")) == 0:
            continue  # a one-shot helper that did its job
        if info:
            checked = (((info.get("Config") or {}).get("Healthcheck") or {}).get("Test") or ["NONE"])[0] != "NONE"
            ready = not checked or (state.get("Health") or {}).get("Status") == "healthy"
        else:  # gone meanwhile, or not inspected: what ps said
            ready = row.get("Health", "") in ("", "healthy")
        if status != "running" or not ready:
            bad.append(row)
    return bad


def inspect(rows: list[dict]) -> dict[str, dict]:
    ids = [row["ID"] for row in rows if row.get("ID")]
    if not ids:
        return {}
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, timeout=60).stdout
    found = json.loads(out or "[]")  # a container removed meanwhile is left out
    return {row["ID"]: info for row in rows for info in found if info["Id"].startswith(row.get("ID") or "-")}


def print_why(compose: list[str] | None = None, tail: int = 30) -> int:
    """After a failed `make up`: each service that is not ready, and its last log lines."""
    compose = compose or ["docker", "compose"]
    rows = ps(compose)
    bad = not_ready(rows, inspect(rows))
    if not bad:
        print("every service is running and healthy now")
        return 0
    for row in bad:
        service = row["Service"]
        print(f"\n== {service}: {row.get('State')} {row.get('Health', '')} {row.get('Status', '')}".rstrip())
        logs = subprocess.run([*compose, "logs", "--no-color", "--no-log-prefix", "--tail", str(tail), service],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        print(logs.stdout.rstrip() or logs.stderr.rstrip() or "(no log lines)")
    names = ", ".join(row["Service"] for row in bad)
    print(f"\nnot ready: {names} (`make logs SERVICE=<name>` follows one)")
    return 1


def main(argv: list[str]) -> int:
    if argv == ["files"]:
        print(os.pathsep.join(compose_files()))
        return 0
    if argv[:1] == ["urls"]:
        return print_urls(argv[1:])
    if argv[:1] == ["why"]:
        return print_why(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
