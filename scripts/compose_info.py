#!/usr/bin/env python3
"""What the Makefile, the drills and the tests ask `docker compose` about the stack.

    python3 scripts/compose_info.py files [--scale]
                                            the compose files for this engine and your settings
                                            (COMPOSE_FILE; --scale: the scale-out profile's)
    python3 scripts/compose_info.py check   Docker Compose is v2 and at least MIN_COMPOSE (make up)
    python3 scripts/compose_info.py auth [--scale]
                                            whether STACK_AUTH is on and why (one line; exit 0
                                            on, 1 off); --scale: exit 2, saying so, when it is on
    python3 scripts/compose_info.py image SERVICE
                                            the image compose runs SERVICE with (your settings
                                            applied; `docker compose config --images SERVICE`
                                            also lists the images of what it depends on)
    python3 scripts/compose_info.py urls [COMPOSE...]
                                            every published endpoint of the running stack
    python3 scripts/compose_info.py why [COMPOSE...]
                                            which services are not running or not healthy,
                                            and their last log lines (after a failed `make up`;
                                            COMPOSE: the compose command, `docker compose`)
    python3 scripts/compose_info.py off [COMPOSE...]
                                            removes the containers of a part switched off in
                                            COMPOSE_PROFILES since it started (make up)

Ports are read back from compose (`docker compose ps`), never typed twice: the compose
file is the one place a port is published.

Standard library only (runs before the project's virtual environment exists).
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import ssl
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
# The scale-out profile, and the copies to your backend from its agent and second replica.
SCALE_FILE = "docker-compose.scale.yml"
SCALE_FORWARD_FILES = {
    "FORWARD_OTLP_ENDPOINT": "docker-compose.scale.forward-otlp.yml",
    "PROMETHEUS_REMOTE_WRITE_URL": "docker-compose.scale.remote-write.yml",
}
# The stack shared with a team (STACK_AUTH): TLS and a login on every published port.
AUTH_FILE = "docker-compose.auth.yml"
# The user's own additions, loaded last (`make up` creates it from its example).
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
    "otel-edge": "OTLP in: send your own telemetry here (with STACK_OTLP_TOKEN as a bearer token)",
}
NON_HTTP = {4317}  # OTLP/gRPC
# The oldest Compose v2 the stack runs on: `!reset`/`!override` in its overlays (the
# scale-out profile, the tests' and the benchmark's port overlays) came with 2.24.4;
# `depends_on.required` with 2.20. `make up` checks it (compose_info.py check).
MIN_COMPOSE = (2, 24, 4)


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


def is_loopback(address: str) -> bool:
    """127.0.0.1, ::1, localhost: reachable from this machine only."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:  # a name: assume it reaches further
        return False


def auth_mode(user: dict[str, str]) -> tuple[bool, str]:
    """Whether the published ports get TLS and a login (STACK_AUTH: auto, on, off), and a
    line saying why, for `make up` to print."""
    mode = (user.get("STACK_AUTH") or "auto").strip().lower()
    bind = (user.get("BIND_ADDRESS") or "127.0.0.1").strip()
    shared = not is_loopback(bind)
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"STACK_AUTH={mode!r}: one of auto, on, off")
    if mode == "on":
        return True, "STACK_AUTH=on: every published port asks for TLS and a login (README, \"Share it with your team\")."
    if mode == "off":
        if shared:
            return False, (f"WARNING: STACK_AUTH=off with BIND_ADDRESS={bind}: every published port but Grafana's "
                           "is open to anyone who reaches this machine (writing telemetry, silencing alerts, "
                           "reading everything). Remove STACK_AUTH=off from .env to protect them.")
        return False, ""
    if shared:
        return True, (f"STACK_AUTH is on by itself: BIND_ADDRESS={bind} is not a loopback address, so every "
                      "published port asks for TLS and a login (README, \"Share it with your team\"; "
                      "STACK_AUTH=off in .env turns it off).")
    return False, ""


class Login:
    """How a client on this machine reaches the stack's published ports: plain HTTP, or,
    with STACK_AUTH on, HTTPS trusting the stack's CA with the stack's login (Basic)."""

    def __init__(self, user: str = "", password: str = "", ca_file: str | Path | None = None):
        self.ca_file = str(ca_file) if ca_file else None
        self.scheme = "https" if self.ca_file else "http"
        self.basic = ("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()) if user else None

    @classmethod
    def from_settings(cls, user: dict[str, str] | None = None, root: Path = REPO) -> "Login":
        """The user's stack, as `make up` set it (.env, the environment over it)."""
        user = settings(root) if user is None else user
        if not auth_mode(user)[0]:
            return cls()
        ca = user.get("STACK_TLS_CA_FILE") or envfile.secrets_dir(root / ".env") / "tls" / "ca.pem"
        return cls(user.get("STACK_AUTH_USER") or "stack", user.get("STACK_AUTH_PASSWORD", ""), ca)

    def context(self) -> "ssl.SSLContext | None":
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None


def compose_files(root: Path = REPO, user: dict[str, str] | None = None, extras: bool = True,
                  scale: bool = False) -> list[str]:
    """The compose files `make up` (`make up-scale`: `scale`) loads, in order: the stack;
    faster healthchecks where the engine takes them; the scale-out profile; a forwarding
    overlay per forwarding setting the user made (and the scale-out agent's copy); TLS and
    logins where STACK_AUTH is on (not in the scale-out profile: `make up-scale` refuses);
    and the user's own additions last, so that every profile keeps them. `user` (default:
    settings()) decides the overlays; the test tiers pass user={}, extras=False and get the
    stack as shipped, whatever the user set."""
    user = settings(root) if user is None else user
    files = [BASE_FILE]
    api = engine_api_version()
    if api is not None and api >= FAST_HEALTH_API and (root / FAST_HEALTH_FILE).exists():
        files.append(FAST_HEALTH_FILE)
    if scale:
        files.append(SCALE_FILE)
    files += [f for var, f in FORWARD_FILES.items() if user.get(var)]
    if scale:
        files += [f for var, f in SCALE_FORWARD_FILES.items() if user.get(var)]
    elif auth_mode(user)[0]:
        files.append(AUTH_FILE)
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


def session_overlay(*compose_files: Path, host: str = "127.0.0.1", places: Path | None = None) -> str:
    """A compose overlay for a second project beside the user's stack (the tests', the
    benchmark's): every port of the compose files (docker-compose.yml by default)
    re-published on `host` with a host port Docker picks, so it runs beside a stack that
    holds the usual ports, on Linux and Docker Desktop alike; and, with `places`, empty
    places of the user's (scripts/places.py) mounted over theirs, so a user's targets,
    rules or extras never reach it. Needs PyYAML (the project's venv has it)."""
    from scripts import places as user_places

    targets: dict[str, list[str]] = {}
    mounts: dict[str, list[str]] = {}
    empty = user_places.empty_copy(places) if places else {}
    for f in compose_files or (REPO / BASE_FILE,):
        for name, svc in load_compose_yaml(Path(f))["services"].items():
            ports = svc.get("ports")
            if ports is not None:  # a later file's list replaces an earlier one's
                targets[name] = [str(spec).rsplit(":", 1)[1] for spec in ports]
            inside = [str(v).split(":")[1] for v in svc.get("volumes") or [] if str(v).count(":") >= 1]
            for container, host_path in empty.items():
                # a service that mounts the place's folder (or the place itself) gets the empty one
                if any(container == c or container.startswith(c.rstrip("/") + "/") for c in inside):
                    mounts.setdefault(name, []).append(f'"{host_path}:{container}:ro"')
    lines = ["# Generated by scripts/compose_info.py for one run.", "services:"]
    for name in dict.fromkeys([*targets, *mounts]):
        if not targets.get(name) and name not in mounts:
            continue
        lines.append(f"  {name}:")
        if targets.get(name):
            lines.append("    ports: !override")
            lines += [f'      - "{host}::{target}"' for target in targets[name]]
        if name in mounts:
            lines.append("    volumes:")
            lines += [f"      - {m}" for m in dict.fromkeys(mounts[name])]
    return "\n".join(lines) + "\n"


def compose_version() -> tuple[int, ...] | None:
    """`docker compose version --short` as numbers (None: no Compose v2 plugin)."""
    try:
        out = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True,
                             timeout=30).stdout.strip().lstrip("v")
        return tuple(int(p) for p in re.findall(r"\d+", out)[:3]) or None
    except (OSError, subprocess.SubprocessError):
        return None


def check_compose() -> int:
    version = compose_version()
    want = ".".join(map(str, MIN_COMPOSE))
    if version is None:
        print(f"Docker Compose v2 is needed (`docker compose version` fails): {want} or newer", file=sys.stderr)
        return 1
    if version < MIN_COMPOSE:
        print(f"Docker Compose {'.'.join(map(str, version))} is too old: the stack needs {want} or newer "
              "(its overlays use !reset and !override)", file=sys.stderr)
        return 1
    return 0


def browser_host(address: str, env: dict[str, str] | None = None) -> str:
    """The host part of a URL for a published address (0.0.0.0 means this machine):
    STACK_HOST where the user set it (environment or .env, as compose reads it)."""
    stack_host = (settings() if env is None else env).get("STACK_HOST")
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
    user = settings()
    shared, _ = auth_mode(user)
    scheme = "https" if shared else "http"
    for service in sorted(ports, key=lambda s: (s not in ROLES, list(ROLES).index(s) if s in ROLES else 0, s)):
        for target, (address, port) in sorted(ports[service].items()):
            host = browser_host(address)
            where = f"{host}:{port}" if target in NON_HTTP else f"{scheme}://{host}:{port}"
            print(f"{service:<15}{where:<28}{ROLES.get(service, '')}")
    if shared:
        secrets = envfile.secrets_dir(REPO / ".env")
        ca = user.get("STACK_TLS_CA_FILE") or secrets / "tls" / "ca.pem"
        print(f"Login (all but Grafana): STACK_AUTH_USER / STACK_AUTH_PASSWORD in {REPO / '.env'}; "
              f"OTLP: bearer STACK_OTLP_TOKEN; TLS: trust {ca} (README, \"Share it with your team\")")
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


def remove_switched_off(compose: list[str]) -> list[str]:
    """Removes the containers of a part switched off since they started (a profile taken
    out of COMPOSE_PROFILES, the demo's say): `compose up` leaves them running. Returns
    their services."""
    def services(*flags: str) -> set[str]:
        return set(subprocess.run([*compose, *flags, "config", "--services"], capture_output=True, text=True,
                                  cwd=REPO, timeout=60, check=True).stdout.split())
    off = sorted(({row["Service"] for row in ps(compose)} & services("--profile", "*")) - services())
    if off:
        subprocess.run([*compose, "--profile", "*", "rm", "--stop", "--force", *off], capture_output=True,
                       text=True, cwd=REPO, timeout=300, check=True)
    return off


def main(argv: list[str]) -> int:
    if argv[:1] == ["files"] and set(argv[1:]) <= {"--scale"}:
        print(os.pathsep.join(compose_files(scale="--scale" in argv)))
        return 0
    if argv == ["check"]:
        return check_compose()
    if argv[:1] == ["auth"] and set(argv[1:]) <= {"--scale"}:
        try:
            on, line = auth_mode(settings())
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if on and "--scale" in argv:
            print("The scale-out profile does not run behind STACK_AUTH: its extra ports have no TLS or login. "
                  "Set STACK_AUTH=off with a loopback BIND_ADDRESS for `make up-scale`.", file=sys.stderr)
            return 2
        if line:
            print(line, file=sys.stderr if not on else sys.stdout)
        return 0 if on else 1
    if argv[:1] == ["image"] and len(argv) == 2:
        # Every profile's services: an optional part's image too, whether the part is on or off.
        out = subprocess.run(["docker", "compose", "--profile", "*", "config", "--format", "json"],
                             capture_output=True, text=True, cwd=REPO, timeout=60)
        if out.returncode != 0:
            print(out.stderr.strip(), file=sys.stderr)
            return 1
        services = json.loads(out.stdout)["services"]
        if argv[1] not in services:
            print(f"no service {argv[1]!r}: one of {', '.join(sorted(services))}", file=sys.stderr)
            return 2
        print(services[argv[1]]["image"])
        return 0
    if argv[:1] == ["urls"]:
        return print_urls(argv[1:])
    if argv[:1] == ["why"]:
        return print_why(argv[1:])
    if argv[:1] == ["off"]:
        off = remove_switched_off(argv[1:] or ["docker", "compose"])
        if off:
            print(f"Removed {', '.join(off)}: their part is switched off (COMPOSE_PROFILES).")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
