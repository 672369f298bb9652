#!/usr/bin/env python3
"""Generate the config profiles from the main configs, so they cannot drift apart.

    python3 scripts/profiles.py          # (re)write every profile file
    python3 scripts/profiles.py --check  # exit 1 if a committed profile file is stale
    python3 scripts/profiles.py --env    # the drill profile's settings, VAR=value (make drill-up)

prometheus/prometheus.drill.yml   = prometheus/prometheus.yml with 5s scrape and evaluation
                                    intervals (same rule_files, same scrape_config_files).
alertmanager/alertmanager.drill.yml = alertmanager/alertmanager.yml with short group_wait and
                                    group_interval on every route (same tree, receivers,
                                    inhibition, templates).

Compose selects them with PROMETHEUS_CONFIG_FILE=prometheus.drill.yml and
ALERTMANAGER_CONFIG_FILE=alertmanager.drill.yml (docs/alert-training.md, "Drill profile");
DRILL_ENV holds those and the drill profile's smaller collector queue.

prometheus/prometheus.scale.yml = prometheus/prometheus.yml for the replicas of the scale-out
                                    profile (docker-compose.scale.yml): a `replica` external
                                    label from the environment (Thanos Query deduplicates on
                                    it) and alerts sent to both Alertmanagers of the HA pair.

The stack shared (STACK_AUTH, docker-compose.auth.yml), where Prometheus, Alertmanager,
Grafana and Jaeger serve TLS and ask for a login, and the stack's own clients log in:
prometheus/prometheus.auth.yml,      = prometheus.yml and prometheus.drill.yml, reading
prometheus/prometheus.drill.auth.yml   scrape_configs.auth.yml, and sending alerts to
                                       Alertmanager over TLS with the login;
prometheus/scrape_configs.auth.yml   = scrape_configs.yml with the scrapes of Prometheus and
                                       Alertmanager over TLS with the login, Grafana's over
                                       TLS, and the OTLP edge collector (otel-edge) scraped;
otel-collector/config.auth.yml       = config.yml exporting to Prometheus' OTLP receiver over
                                       TLS with the login (mounted over config.yml);
grafana/auth/datasources/datasources.yml
                                     = the datasources, over TLS with the login where the
                                       service asks for it.
The login and the CA are files of scripts/auth.py's, at /run/stack-auth in each container.
Prometheus' entrypoint.sh picks the *.auth.yml variant of whichever file it was given.

tests/config/test_drill_profile.py fails when a committed file differs from what this script
generates.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PROM_MAIN = REPO / "prometheus" / "prometheus.yml"
PROM_DRILL = REPO / "prometheus" / "prometheus.drill.yml"
AM_MAIN = REPO / "alertmanager" / "alertmanager.yml"
AM_DRILL = REPO / "alertmanager" / "alertmanager.drill.yml"
PROM_SCALE = REPO / "prometheus" / "prometheus.scale.yml"
PROM_AUTH = REPO / "prometheus" / "prometheus.auth.yml"
PROM_DRILL_AUTH = REPO / "prometheus" / "prometheus.drill.auth.yml"
SCRAPE_MAIN = REPO / "prometheus" / "scrape_configs.yml"
SCRAPE_AUTH = REPO / "prometheus" / "scrape_configs.auth.yml"
COLLECTOR_MAIN = REPO / "otel-collector" / "config.yml"
COLLECTOR_AUTH = REPO / "otel-collector" / "config.auth.yml"
DATASOURCES_MAIN = REPO / "grafana" / "provisioning" / "datasources" / "datasources.yml"
DATASOURCES_AUTH = REPO / "grafana" / "auth" / "datasources" / "datasources.yml"
# scripts/auth.py's files, as the containers see them (docker-compose.auth.yml).
AUTH_MOUNT = "/run/stack-auth"
# The stack's own HTTPS clients inside the network: the CA, and the login where asked.
TLS_CLIENT = {"tls_config": {"ca_file": f"{AUTH_MOUNT}/ca.pem"}}
LOGIN_CLIENT = {"basic_auth": {"username_file": f"{AUTH_MOUNT}/user", "password_file": f"{AUTH_MOUNT}/password"},
                **TLS_CLIENT}
# Jobs of scrape_configs.yml whose targets serve TLS (and ask for the login: True) when shared.
AUTH_JOBS = {"prometheus": True, "alertmanager": True, "grafana": False}
# The OTLP edge collector of docker-compose.auth.yml: a job of its own (jobs are named
# after compose services), scraped like the stack's collector.
EDGE_JOB = ("otel-collector", "otel-edge", "otel-edge:8888")
# Grafana's datasources on services that serve TLS and ask for the login when shared.
AUTH_DATASOURCES = {"prometheus", "jaeger", "alertmanager"}
# The HA pair of the scale-out profile: every replica sends every alert to both.
SCALE_ALERTMANAGERS = ["alertmanager:9093", "alertmanager-b:9093"]

# Scrape and evaluate every 5s: a counter step is visible to rate() 5-10s after it happens.
PROM_GLOBAL = {"scrape_interval": "5s", "scrape_timeout": "4s", "evaluation_interval": "5s"}
# Notify 5s after the first alert of a group, re-notify changes (new alerts, resolutions)
# every 10s. Repeat intervals stay as they are: drills look at first notifications.
AM_GROUP_WAIT = "5s"
AM_GROUP_INTERVAL = "10s"

HEADER = """\
# GENERATED by `python3 scripts/profiles.py` from {src} -- do not edit by hand.
# Profile: {what}
# Everything else is identical to {src}; tests/config/test_drill_profile.py checks it.
"""


def _seconds(d: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, num = 0.0, ""
    i = 0
    while i < len(d):
        c = d[i]
        if c.isdigit():
            num += c
            i += 1
            continue
        unit = "ms" if d[i:i + 2] == "ms" else c
        total += int(num) * units[unit]
        num = ""
        i += len(unit)
    return total


def _shorter(current: str | None, target: str) -> str:
    """The shorter of two durations (a 0s group_wait stays 0s)."""
    if current is None:
        return target
    return current if _seconds(current) <= _seconds(target) else target


def prometheus_drill(main_text: str) -> str:
    cfg = yaml.safe_load(main_text)
    cfg.setdefault("global", {}).update(PROM_GLOBAL)
    # Inline jobs with their own interval would not speed up; the included scrape files are
    # shared as they are (tests check they set no interval of their own).
    for job in cfg.get("scrape_configs") or []:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
    return HEADER.format(src="prometheus.yml", what="scrape and evaluate every 5s.") + \
        yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, width=100)


def prometheus_scale(main_text: str) -> str:
    cfg = yaml.safe_load(main_text)
    # Prometheus 3 expands ${VAR} in external label values: one file for both replicas.
    cfg["global"].setdefault("external_labels", {})["replica"] = "${PROMETHEUS_REPLICA}"
    cfg["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": SCALE_ALERTMANAGERS}]}]
    return HEADER.format(
        src="prometheus.yml",
        what="a replica of the scale-out pair (replica label from PROMETHEUS_REPLICA, both Alertmanagers).",
    ) + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, width=100)


class _NoAliases(yaml.SafeDumper):
    """Writes a node the source shared (a YAML anchor) out in full each time: no &id001."""
    def ignore_aliases(self, data) -> bool:
        return True


def _dump(cfg: dict) -> str:
    return yaml.dump(cfg, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=100,
                     allow_unicode=True)


def prometheus_auth(text: str, src: str) -> str:
    cfg = yaml.safe_load(text.split("\n", 1)[1] if text.startswith("# GENERATED") else text)
    cfg["scrape_config_files"] = [SCRAPE_AUTH.name if f == SCRAPE_MAIN.name else f
                                  for f in cfg.get("scrape_config_files") or []]
    for am in cfg["alerting"]["alertmanagers"]:
        am.update(scheme="https", **copy.deepcopy(LOGIN_CLIENT))
    return HEADER.format(src=src, what="the stack shared (STACK_AUTH): Alertmanager and its own scrapes "
                         "over TLS with the login.") + _dump(cfg)


def scrape_configs_auth(text: str) -> str:
    cfg = yaml.safe_load(text)
    jobs = cfg["scrape_configs"]
    for job in list(jobs):
        login = AUTH_JOBS.get(job["job_name"])
        if login is not None:
            job.update(scheme="https", **copy.deepcopy(LOGIN_CLIENT if login else TLS_CLIENT))
        if job["job_name"] == EDGE_JOB[0]:
            edge = copy.deepcopy(job)
            edge.update(job_name=EDGE_JOB[1], static_configs=[{"targets": [EDGE_JOB[2]]}])
            jobs.insert(jobs.index(job) + 1, edge)
    return HEADER.format(src="scrape_configs.yml", what="the stack shared (STACK_AUTH): Prometheus, "
                         "Alertmanager and Grafana scraped over TLS (the first two with the login), "
                         "otel-edge scraped.") + _dump(cfg)


def collector_auth(text: str) -> str:
    """The collector's config.yml, exporting to Prometheus' OTLP receiver over TLS with the
    login. docker-compose.auth.yml mounts it over config.yml, so that every layer a profile
    adds after config.yml (forwarding, config.extras.yml) still applies."""
    cfg = yaml.safe_load(text)
    exporter = cfg["exporters"]["otlp_http/prometheus"]
    exporter["endpoint"] = exporter["endpoint"].replace("http://prometheus:", "https://prometheus:")
    # The login as a header: the basicauth extension does not build at the pinned release.
    exporter.update(tls={"ca_file": f"{AUTH_MOUNT}/ca.pem"},
                    headers={"Authorization": "${file:%s/authorization}" % AUTH_MOUNT})
    return HEADER.format(src="config.yml", what="the stack shared (STACK_AUTH): metrics to Prometheus' OTLP "
                         "receiver over TLS with the login.") + _dump(cfg)


def datasources_auth(text: str) -> str:
    cfg = yaml.safe_load(text)
    for ds in cfg["datasources"]:
        if ds["uid"] not in AUTH_DATASOURCES:
            continue
        if not str(ds["url"]).startswith("$"):  # Prometheus': PROMETHEUS_QUERY_URL (the overlay sets https)
            ds["url"] = str(ds["url"]).replace("http://", "https://", 1)
        ds.update(basicAuth=True, basicAuthUser="${STACK_AUTH_USER}")
        ds.setdefault("jsonData", {})["tlsAuthWithCACert"] = True
        ds["secureJsonData"] = {"basicAuthPassword": f"$__file{{{AUTH_MOUNT}/password}}",
                                "tlsCACert": f"$__file{{{AUTH_MOUNT}/ca.pem}}"}
    return HEADER.format(src="grafana/provisioning/datasources/datasources.yml",
                         what="the stack shared (STACK_AUTH): Prometheus, Jaeger and Alertmanager over TLS "
                         "with the login.") + _dump(cfg)


def alertmanager_drill(main_text: str) -> str:
    cfg = copy.deepcopy(yaml.safe_load(main_text))

    def walk(route: dict, root: bool) -> None:
        if root or "group_wait" in route:
            route["group_wait"] = _shorter(route.get("group_wait"), AM_GROUP_WAIT)
        if root or "group_interval" in route:
            route["group_interval"] = _shorter(route.get("group_interval"), AM_GROUP_INTERVAL)
        for child in route.get("routes") or []:
            walk(child, False)

    walk(cfg["route"], True)
    return HEADER.format(
        src="alertmanager.yml",
        what=f"group_wait <= {AM_GROUP_WAIT}, group_interval <= {AM_GROUP_INTERVAL} on every route.",
    ) + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


# The drill profile for compose (make drill-up, the training-ground tier): the generated
# files, and a collector sending queue per exporter (bytes) that a backend stopped by a drill
# fills within the drill, not in the default 256 MiB's hours, so that exercises 05 and 11
# can be drilled live. Measured on the twins at the demo's load: Jaeger stopped, the traces
# queue grows ~0.5 MB a minute (full in ~33 min); without Loki the logs queue ~0.2 MB a
# minute (full in ~80 min: longer than the training-ground tier).
DRILL_QUEUE = {"OTELCOL_QUEUE_MAX_BYTES": str(16 * 1024 * 1024)}
DRILL_ENV = {"PROMETHEUS_CONFIG_FILE": PROM_DRILL.name, "ALERTMANAGER_CONFIG_FILE": AM_DRILL.name, **DRILL_QUEUE}


PAIRS = ((PROM_MAIN, PROM_DRILL, prometheus_drill), (AM_MAIN, AM_DRILL, alertmanager_drill),
         (PROM_MAIN, PROM_SCALE, prometheus_scale),
         (PROM_MAIN, PROM_AUTH, lambda text: prometheus_auth(text, "prometheus.yml")),
         (PROM_DRILL, PROM_DRILL_AUTH, lambda text: prometheus_auth(text, "prometheus.drill.yml")),
         (SCRAPE_MAIN, SCRAPE_AUTH, scrape_configs_auth),
         (COLLECTOR_MAIN, COLLECTOR_AUTH, collector_auth),
         (DATASOURCES_MAIN, DATASOURCES_AUTH, datasources_auth))


def main(argv: list[str]) -> int:
    if "--env" in argv:
        print("\n".join(f"{k}={v}" for k, v in DRILL_ENV.items()))
        return 0
    check = "--check" in argv
    stale = []
    for main_file, drill_file, gen in PAIRS:
        if not main_file.exists():
            print(f"skip {_rel(drill_file)}: {_rel(main_file)} does not exist")
            continue
        text = gen(main_file.read_text())
        if check:
            if not drill_file.exists() or drill_file.read_text() != text:
                stale.append(str(_rel(drill_file)))
        else:
            drill_file.parent.mkdir(parents=True, exist_ok=True)
            drill_file.write_text(text)
            print(f"wrote {_rel(drill_file)}")
    if stale:
        print("stale profile (run `python3 scripts/profiles.py`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
