#!/usr/bin/env python3
"""The stack's stores and their bounds, in one table: what `make disk` prints against each
volume's use, what the README's "Bounds" table lists, what the soak and the fill test
measure.

    python3 scripts/bounds.py            (make disk) each volume's use against its bound

Bounds are read as the running stack has them: `docker compose config` resolves every
${VAR:-default} with the user's .env; a variable compose only passes on (`VAR:` with no
value) falls back to the default written in the component's own config file. Sizes are
measured with `du` in a throwaway container (the Prometheus image's busybox), so sparse
files (Badger preallocates 2 GiB value logs) count for what they hold.

Standard library only.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compose_info import REPO, env_default  # noqa: E402

MiB = 1024 * 1024


@dataclass(frozen=True)
class Store:
    volume: str          # the named volume in docker-compose.yml
    service: str         # the service writing it
    bound: str           # what bounds it, in words
    settings: tuple      # the env settings that change the bound


STORES = (
    Store("prometheus-data", "prometheus", "whichever first: retention time, retention size (blocks + WAL)",
          ("PROMETHEUS_RETENTION_TIME", "PROMETHEUS_RETENTION_SIZE")),
    Store("loki-data", "loki", "retention period only (Loki has no size bound)", ("LOKI_RETENTION_PERIOD",)),
    Store("jaeger-data", "jaeger", "spans older than the TTL are dropped", ("JAEGER_TRACES_TTL",)),
    Store("otelcol-queue", "otel-collector", "each backend's sending queue, in bytes", ("OTELCOL_QUEUE_MAX_BYTES",)),
    Store("alertmanager-data", "alertmanager", "silences and notification log expire", ("ALERTMANAGER_DATA_RETENTION",)),
    Store("alert-sink-data", "alert-sink", "notifications by count and bytes, oldest first",
          ("DEMO_STORE_MAX_NOTIFICATIONS", "DEMO_STORE_MAX_BYTES")),
    Store("grafana-data", "grafana", "not bounded: Grafana's own database (users, preferences)", ()),
    Store("collector-probe", "volume-init", "one file: promtool, the collector's healthcheck client", ()),
)
# Container logs (not a volume): json-file, max-file files of max-size each.
LOG_SETTINGS = ("CONTAINER_LOG_MAX_SIZE", "CONTAINER_LOG_MAX_FILES")


def config(compose: list[str]) -> dict:
    return json.loads(subprocess.run([*compose, "config", "--format", "json"], capture_output=True, text=True,
                                     check=True, timeout=60, cwd=REPO).stdout)


def _flag(svc: dict, name: str) -> str:
    return next((a.split("=", 1)[1] for a in svc.get("command") or [] if a.startswith(f"--{name}=")), "")


def _env(svc: dict, var: str, default_file: str) -> str:
    return (svc.get("environment") or {}).get(var) or env_default((REPO / default_file).read_text(), var)


def sink_defaults() -> tuple[int, int]:
    """The alert sink's store bounds as demo_app/settings.py sets them."""
    text = (REPO / "demo_app" / "src" / "demo_app" / "settings.py").read_text()
    count = int(re.search(r"store_max_notifications: int = Field\((\d+)", text).group(1))
    size = int(re.search(r"store_max_bytes: int = Field\((\d+) \* MiB", text).group(1)) * MiB
    return count, size


def bounds(cfg: dict) -> dict[str, tuple[str, int | None]]:
    """volume -> (the bound in words, the size bound in bytes or None) as configured."""
    s = cfg["services"]
    out: dict[str, tuple[str, int | None]] = {}
    prom = s["prometheus"]
    size = _flag(prom, "storage.tsdb.retention.size")
    out["prometheus-data"] = (f"{_flag(prom, 'storage.tsdb.retention.time')} or {size}", to_bytes(size))
    if "loki" in s:
        out["loki-data"] = (_env(s["loki"], "LOKI_RETENTION_PERIOD", "loki/loki.yml"), None)
    out["jaeger-data"] = (_env(s["jaeger"], "JAEGER_TRACES_TTL", "jaeger/jaeger.yml") + " of traces", None)
    queue = int(_env(s["otel-collector"], "OTELCOL_QUEUE_MAX_BYTES", "otel-collector/config.yml"))
    queues = (REPO / "otel-collector" / "config.yml").read_text().count("sending_queue:")
    out["otelcol-queue"] = (f"{queues} queues x {queue // MiB} MiB", queues * queue)
    out["alertmanager-data"] = (_flag(s["alertmanager"], "data.retention"), None)
    count, store = sink_defaults()
    env = s["alert-sink"].get("environment") or {}
    store = int(env.get("DEMO_STORE_MAX_BYTES") or store)
    out["alert-sink-data"] = (f"{env.get('DEMO_STORE_MAX_NOTIFICATIONS') or count} notifications or "
                              f"{store // MiB} MiB", store)
    out["grafana-data"] = ("none", None)
    out["collector-probe"] = ("one file", None)
    return out


def to_bytes(size: str) -> int | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B", size.strip(), re.IGNORECASE)
    if not m:
        return None
    return int(float(m.group(1)) * 1024 ** "KMGT".index(m.group(2).upper()) * 1024) if m.group(2) \
        else int(m.group(1))


def volume_sizes(project: str, image: str, volumes: list[str]) -> dict[str, int]:
    """Bytes each of the project's volumes holds (du: blocks in use, sparse files as
    they are); a volume that does not exist yet is left out."""
    existing = set(subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                                  capture_output=True, text=True, timeout=60).stdout.split())
    names = {v: f"{project}_{v}" for v in volumes if f"{project}_{v}" in existing}
    if not names:
        return {}
    mounts = [a for v, n in names.items() for a in ("-v", f"{n}:/v/{v}:ro")]
    # As root: Jaeger's and the collector's volumes belong to uid 10001 and are not
    # readable by the image's own user (du would count their top folder only).
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0:0", "--entrypoint", "du", *mounts, image,
                          "-sk", *[f"/v/{v}" for v in names]], capture_output=True, text=True, timeout=120)
    return {line.split()[1].removeprefix("/v/"): int(line.split()[0]) * 1024 for line in out.stdout.splitlines()}


def main(argv: list[str]) -> int:
    compose = argv or ["docker", "compose"]
    cfg = config(compose)
    sizes = volume_sizes(cfg["name"], cfg["services"]["prometheus"]["image"], [s.volume for s in STORES])
    b = bounds(cfg)
    print(f"{'volume':18} {'used':>10}  {'bound':32} {'of bound':>8}  set by")
    for s in STORES:
        words, limit = b.get(s.volume, ("-", None))
        used = sizes.get(s.volume)
        share = f"{used / limit:.0%}" if used is not None and limit else ""
        shown = "-" if used is None else f"{used / MiB:.1f} MiB"
        print(f"{s.volume:18} {shown:>10}  {words:32} {share:>8}  {', '.join(s.settings) or '-'}")
    logs = cfg["services"]["prometheus"]["logging"]["options"]
    print(f"{'container logs':18} {'':>10}  {logs['max-file']} x {logs['max-size']} per container"
          f"{'':9}{'':>8}  {', '.join(LOG_SETTINGS)}")
    if not sizes:
        print("(no volume of this project exists yet: make up)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
