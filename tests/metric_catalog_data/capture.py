#!/usr/bin/env python3
"""Capture the self-metric names of the stack's components, as Prometheus stores them.

    python3 tests/metric_catalog_data/capture.py            # twins/pinned images, ~1 minute
    python3 tests/metric_catalog_data/capture.py --from http://127.0.0.1:9090   # a running stack

Without --from it starts, on a private Docker network, Alertmanager, the collector (with
otel-collector/config.yml, its exporters pointed at endpoints that answer 404 so that the
failure counters appear too) and Jaeger when its image exists, plus a Prometheus that loads
prometheus/rules/, sends alerts to that Alertmanager (whose webhook receiver is absent, so
notifications fail) and scrapes everything every 2s. It sends one OTLP trace, log and metric
to the collector, waits, then asks Prometheus for the metric names of each job
(/api/v1/label/__name__/values?match[]={job="..."}) and writes <job>.txt here.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
from tests.tooling import image  # noqa: E402

JOBS = ("prometheus", "alertmanager", "otel-collector", "jaeger", "node-exporter", "telegraf")
NET = "metric-capture"


def sh(*cmd: str, check: bool = True) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p.stdout.strip()


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def names_by_job(prom: str, jobs) -> dict[str, list[str]]:
    out = {}
    for job in jobs:
        q = urllib.parse.urlencode({"match[]": f'{{job="{job}"}}'})
        names = get(f"{prom}/api/v1/label/__name__/values?{q}")["data"]
        if names:
            out[job] = sorted(names)
    return out


def write(found: dict[str, list[str]], how: str, images: dict[str, str]) -> None:
    for job, names in found.items():
        ref = images.get(job, "")
        header = (f"# Metric names of {job} as stored by Prometheus, captured {time.strftime('%Y-%m-%d')}\n"
                  f"# from {ref or 'the running stack'} by tests/metric_catalog_data/capture.py ({how}).\n")
        (HERE / f"{job}.txt").write_text(header + "\n".join(names) + "\n")
        print(f"{job}: {len(names)} names -> {job}.txt")


def otlp_payloads() -> dict[str, dict]:
    now = str(time.time_ns())
    res = {"attributes": [{"key": "service.name", "value": {"stringValue": "capture"}}]}
    return {
        "traces": {"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "capture", "kind": 2, "startTimeUnixNano": now, "endTimeUnixNano": now}]}]}]},
        "logs": {"resourceLogs": [{"resource": res, "scopeLogs": [{"logRecords": [{
            "timeUnixNano": now, "body": {"stringValue": "capture"}}]}]}]},
        "metrics": {"resourceMetrics": [{"resource": res, "scopeMetrics": [{"metrics": [{
            "name": "capture_total", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                             "dataPoints": [{"asInt": "1", "timeUnixNano": now}]}}]}]}]},
    }


def run_twins(wait: float) -> None:
    images = {"prometheus": image("PROMETHEUS_IMAGE"), "alertmanager": image("ALERTMANAGER_IMAGE"),
              "otel-collector": image("OTELCOL_IMAGE")}
    # The optional ones, where their images are here.
    for job, var in (("jaeger", "JAEGER_IMAGE"), ("node-exporter", "NODE_EXPORTER_IMAGE"), ("telegraf", "TELEGRAF_IMAGE")):
        try:
            images[job] = image(var)
            sh("docker", "image", "inspect", images[job])
        except Exception:
            images.pop(job, None)
    started: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="capture-"))
    scrape = [{"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
              {"job_name": "alertmanager", "static_configs": [{"targets": ["alertmanager:9093"]}]},
              {"job_name": "otel-collector", "static_configs": [{"targets": ["otel-collector:8888"]}]}]
    for job, port in (("jaeger", 8888), ("node-exporter", 9100), ("telegraf", 9273)):
        if job in images:
            scrape.append({"job_name": job, "static_configs": [{"targets": [f"{job}:{port}"]}]})
    (tmp / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": ["/etc/prometheus/rules/*.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        # A remote_write that answers 404: its queue metrics appear (and the failure counters).
        "remote_write": [{"name": "capture", "url": "http://alertmanager:9093/nothing-here"}],
        "scrape_configs": scrape}))
    os.chmod(tmp, 0o755)
    os.chmod(tmp / "prometheus.yml", 0o644)

    def run(name: str, *args: str) -> str:
        cid = sh("docker", "run", "-d", "--rm", "--name", f"capture-{name}", "--network", NET,
                 "--network-alias", name, *args)
        started.append(cid)
        return cid

    sh("docker", "network", "create", NET, check=False)
    try:
        run("alertmanager", "-v", f"{REPO / 'alertmanager'}:/etc/alertmanager:ro",
            images["alertmanager"], "--config.file=/etc/alertmanager/alertmanager.drill.yml",
            "--storage.path=/tmp")
        # 404s are permanent errors: the exporters count failures at once, without retrying.
        run("otel-collector", "-p", "127.0.0.1::4318",
            "-e", "LOKI_OTLP_ENDPOINT=http://prometheus:9090/nothing-here", "--tmpfs", "/var/lib/otelcol",
            "-e", "PROMETHEUS_OTLP_ENDPOINT=http://prometheus:9090/api/v1/otlp",
            "-e", "JAEGER_OTLP_GRPC_ENDPOINT=" + ("jaeger:4317" if "jaeger" in images else "alertmanager:9093"),
            "-v", f"{REPO / 'otel-collector' / 'config.yml'}:/etc/otelcol-contrib/config.yaml:ro",
            images["otel-collector"], "--config=/etc/otelcol-contrib/config.yaml")
        if "jaeger" in images:
            # The stack's config: its telemetry listens on 0.0.0.0:8888 (the default is localhost).
            run("jaeger", "-v", f"{REPO / 'jaeger'}:/etc/jaeger:ro", images["jaeger"],
                "--config=/etc/jaeger/jaeger.yml")
        if "node-exporter" in images:  # the host profile's: the host's tree, read-only
            run("node-exporter", "-v", "/:/host:ro", images["node-exporter"], "--path.rootfs=/host")
        if "telegraf" in images:  # the containers profile's: the Docker API, as compose runs it
            run("telegraf", "-u", "0:0", "--tmpfs", "/var/lib/telegraf", "--entrypoint", "telegraf",
                "-e", "TELEGRAF_LOGS_ENDPOINT=tcp://otel-collector:54525",
                "-v", f"{REPO / 'telegraf'}:/etc/telegraf:ro", "-v", "/var/run/docker.sock:/var/run/docker.sock:ro",
                images["telegraf"], "--config", "/etc/telegraf/telegraf.conf")
        run("prometheus", "-p", "127.0.0.1::9090",
            "-v", f"{tmp / 'prometheus.yml'}:/etc/prometheus/prometheus.yml:ro",
            "-v", f"{REPO / 'prometheus' / 'rules'}:/etc/prometheus/rules:ro",
            images["prometheus"], "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus", "--web.enable-otlp-receiver")
        prom = "http://" + sh("docker", "port", "capture-prometheus", "9090/tcp").splitlines()[0]
        otlp = "http://" + sh("docker", "port", "capture-otel-collector", "4318/tcp").splitlines()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(prom + "/-/ready", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        for i in range(int(wait // 5)):
            for signal, body in otlp_payloads().items():
                req = urllib.request.Request(f"{otlp}/v1/{signal}", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
                try:
                    urllib.request.urlopen(req, timeout=5)
                except OSError as e:
                    print(f"  OTLP {signal}: {e}")
            time.sleep(5)
        write(names_by_job(prom, [j for j in JOBS if j in images]),
              "twin containers, OTLP traffic, failing exporters and receivers", images)
        # Span metrics: the collector's span_metrics connector -> Prometheus' OTLP receiver,
        # stored under job=<service.name of the spans> ("capture" here).
        spans = [n for n in names_by_job(prom, ["capture"]).get("capture", [])
                 if n.startswith("traces_span_metrics_")]
        if spans:
            write({"span-metrics": spans}, "span_metrics connector -> Prometheus OTLP receiver "
                  "(default translation)", {"span-metrics": images["otel-collector"]})
    finally:
        for cid in started:
            sh("docker", "rm", "-f", cid, check=False)
        sh("docker", "network", "rm", NET, check=False)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="prom", help="a running Prometheus to ask instead")
    p.add_argument("--wait", type=float, default=45)
    a = p.parse_args()
    if a.prom:
        write(names_by_job(a.prom.rstrip("/"), JOBS), "running stack", {})
    else:
        run_twins(a.wait)
    return 0


if __name__ == "__main__":
    sys.exit(main())
