"""Folders that work where they land: each component folder, copied alone into an empty
directory, passes its own validator there with only the settings its README documents;
and prometheus/ with alertmanager/, started from their copies next to a stand-in for the
alert sink (the demo image in its alert-sink role), scrape it and deliver an alert to it."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from scripts import validate
from tests.e2e.polling import poll_until
from tests.tooling import REPO, require_image

# Each folder and the validator runs of `make validate` that belong to it.
FOLDERS = {
    "prometheus": "promtool",
    "alertmanager": "amtool",
    "otel-collector": "otelcol validate otel-collector/config",
    "jaeger": "jaeger validate",
    "loki": "loki -verify-config",
    "telegraf": "telegraf config check",
}


def _copy_alone(folder: str, into: Path) -> Path:
    """The folder as a user copies it: the tracked files, none of the repository around it."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", folder], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in (f for f in files if (REPO / f).is_file()):
        (into / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, into / f)
    return into / folder


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_folder_copied_alone_passes_its_validator(tmp_path, folder):
    _copy_alone(folder, tmp_path)
    checks = [c for c in validate.checks(tmp_path) if c.name.startswith(FOLDERS[folder])]
    assert checks, f"no validator runs for {folder} alone"
    for check in checks:
        if check.var:
            require_image(check.var)
        status, detail = validate.run(check, tmp_path)
        assert status == "PASS", f"{folder} copied alone: {check.name}:\n{detail}"


def _wait_http(url: str, timeout: float = 60) -> None:
    poll_until(lambda: urllib.request.urlopen(url, timeout=3).status == 200, timeout, f"{url} answers")


def test_prometheus_and_alertmanager_copied_out_scrape_and_deliver(tmp_path):
    """Started from their copied folders, as their READMEs say (the drill profile's files,
    so it is quick), on a network of their own: Prometheus scrapes itself and the
    stand-in, and an alert (the always-firing Watchdog) travels through Alertmanager to
    the stand-in's webhook."""
    prom, am, sink = (require_image(v) for v in ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "DEMO_IMAGE"))
    _copy_alone("prometheus", tmp_path)
    _copy_alone("alertmanager", tmp_path)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "slack_webhook_url").write_text("http://alert-sink:8090/slack/slack")
    (secrets / "smtp_auth_password").write_text("")
    net = f"copied-{uuid.uuid4().hex[:8]}"
    started: list[str] = []

    def run(alias: str, *args: str) -> None:
        cid = subprocess.run(["docker", "run", "-d", "--rm", "--network", net, "--network-alias", alias, *args],
                             capture_output=True, text=True, check=True).stdout.strip()
        started.append(cid)

    subprocess.run(["docker", "network", "create", net], check=True, capture_output=True)
    try:
        run("alert-sink", "--user", "10001:10001", "-p", "127.0.0.1::8090", "--tmpfs", "/var/lib/alert-sink:uid=10001",
            sink, "demo-app", "alert-sink")
        run("alertmanager", "-v", f"{tmp_path / 'alertmanager'}:/etc/alertmanager:ro", "-v", f"{secrets}:/run/secrets:ro",
            "--tmpfs", "/alertmanager:uid=65534", "-e", "ALERTMANAGER_CONFIG_FILE=alertmanager.drill.yml",
            "--entrypoint", "/bin/sh", am, "/etc/alertmanager/entrypoint.sh", "--storage.path=/alertmanager")
        run("prometheus", "-p", "127.0.0.1::9090", "-v", f"{tmp_path / 'prometheus'}:/etc/prometheus:ro",
            "--tmpfs", "/prometheus:uid=65534", "-e", "RUNBOOK_BASE_URL=http://alert-sink:8090",
            "--entrypoint", "/bin/sh", prom, "/etc/prometheus/entrypoint.sh",
            "--config.file=/etc/prometheus/prometheus.drill.yml", "--storage.tsdb.path=/prometheus",
            "--web.enable-otlp-receiver", "--enable-feature=exemplar-storage")
        port = {name: subprocess.run(["docker", "port", name, str(p)], capture_output=True, text=True,
                                     check=True).stdout.split(":")[-1].strip()
                for name, p in ((started[0], 8090), (started[2], 9090))}
        prom_url, sink_url = f"http://127.0.0.1:{port[started[2]]}", f"http://127.0.0.1:{port[started[0]]}"
        _wait_http(prom_url + "/-/ready")

        def up() -> dict:
            body = json.load(urllib.request.urlopen(prom_url + "/api/v1/query?query=up", timeout=5))
            found = {r["metric"]["job"]: r["value"][1] for r in body["data"]["result"]}
            assert found.get("prometheus") == "1" and found.get("alert-sink") == "1", found
            return found
        poll_until(up, 90, "the copied Prometheus scrapes itself and the stand-in")

        def delivered() -> list:
            body = json.load(urllib.request.urlopen(sink_url + "/api/alerts?alertname=Watchdog", timeout=5))
            return body["alerts"]
        t0 = time.monotonic()
        alerts = poll_until(delivered, 120, "the Watchdog travels through the copied Alertmanager to the stand-in")
        assert alerts[0]["labels"].get("alertname") == "Watchdog", alerts[0]
        assert alerts[0]["annotations"]["runbook_url"] == "http://alert-sink:8090/runbooks/Watchdog", alerts[0]
        print(f"copied folders: scraped, and the Watchdog delivered {time.monotonic() - t0:.0f} s after")
    finally:
        for cid in started:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        subprocess.run(["docker", "network", "rm", net], capture_output=True)
