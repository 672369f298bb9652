"""Alertmanager: the config and its drill variant pass amtool, every route sends the alerts it
should to the receiver it should (`amtool config routes test`), the templates render, and a
real Alertmanager inhibits a service's warnings while a critical alert on it fires."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from tests.tooling import REPO, require_image, run_tool

AM_DIR = REPO / "alertmanager"
MOUNT = {AM_DIR: "/etc/alertmanager"}
CONFIGS = ["alertmanager.yml", "alertmanager.drill.yml"]
SINK_URL = "http://alert-sink:8090/webhook"

# (labels of an alert, the receivers it must reach, in order). One case per route, plus
# the edges. Critical and warning alerts also go to Slack (`continue: true`).
ROUTE_CASES = [
    ({"alertname": "Watchdog", "severity": "none"}, "watchdog"),
    ({"alertname": "DemoErrorBudgetBurnFast", "severity": "critical", "service": "shop"}, "slack,critical"),
    ({"alertname": "DemoServiceDown", "severity": "critical", "service": "inventory"}, "slack,critical"),
    ({"alertname": "PrometheusNotConnectedToAlertmanager", "severity": "critical", "service": "prometheus"},
     "slack,critical"),
    ({"alertname": "DemoHighLatencyP95", "severity": "warning", "service": "shop"}, "slack,warning"),
    ({"alertname": "TargetDown", "severity": "warning", "service": "loadgen"}, "slack,warning"),
    # No or unknown severity: the root's default receiver, the alert sink's webhook only.
    ({"alertname": "SomethingNew", "service": "shop"}, "default"),
    ({"alertname": "SomethingNew", "severity": "info"}, "default"),
    # The Watchdog route wins even if someone gives the Watchdog a paging severity.
    ({"alertname": "Watchdog", "severity": "critical"}, "watchdog"),
]


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("ALERTMANAGER_IMAGE", "amtool", *args, mounts=MOUNT)


def _load(name: str) -> dict:
    return yaml.safe_load((AM_DIR / name).read_text())


@pytest.mark.parametrize("config", CONFIGS)
def test_amtool_check_config(config):
    p = _amtool("check-config", f"/etc/alertmanager/{config}")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("labels,receiver", ROUTE_CASES,
                         ids=[f"{l['alertname']}-{l.get('severity', 'none')}" for l, _ in ROUTE_CASES])
def test_route(config, labels, receiver):
    p = _amtool("config", "routes", "test", f"--config.file=/etc/alertmanager/{config}",
                f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items()))
    assert p.returncode == 0, f"{labels} -> {p.stdout.strip()} (expected {receiver}) {p.stderr}"


def test_route_test_can_fail():
    """The route cases above are not vacuous: a wrong expectation makes amtool fail."""
    p = _amtool("config", "routes", "test", "--config.file=/etc/alertmanager/alertmanager.yml",
                "--verify.receivers=slack,warning", "alertname=DemoServiceDown", "severity=critical")
    assert p.returncode != 0 and "critical" in p.stdout + p.stderr


def test_every_route_has_a_case():
    cfg = _load("alertmanager.yml")
    receivers = {r["receiver"] for r in cfg["route"]["routes"]} | {cfg["route"]["receiver"]}
    assert receivers <= {r for _, rs in ROUTE_CASES for r in rs.split(",")}


def test_receivers_keep_the_webhook_and_send_resolved():
    cfg = _load("alertmanager.yml")
    by_name = {r["name"]: r for r in cfg["receivers"]}
    for name in ("default", "watchdog", "critical", "warning"):
        assert [h["url"] for h in by_name[name]["webhook_configs"]] == [SINK_URL], name
    assert by_name["critical"]["email_configs"], "critical alerts are not emailed"
    slack = by_name["slack"]["slack_configs"]
    assert slack and all(s["api_url_file"].startswith("/run/secrets/") for s in slack), "Slack URL is not a secret file"
    for r in cfg["receivers"]:
        for kind, configs in r.items():
            if kind.endswith("_configs"):
                assert all(c.get("send_resolved") is True for c in configs), f"{r['name']} {kind}"
    # Out of the box, email goes to the alert sink inside the compose network (no TLS there).
    assert cfg["global"]["smtp_smarthost"] == "alert-sink:2525" and cfg["global"]["smtp_require_tls"] is False


def test_grouping_and_paging_speed():
    route = _load("alertmanager.yml")["route"]
    assert route["group_by"] == ["alertname", "service"]
    by_receiver = {r["receiver"]: r for r in route["routes"]}
    seconds = {"0s": 0, "10s": 10, "1m": 60, "5m": 300, "1h": 3600, "12h": 43200}
    crit = by_receiver["critical"]
    assert seconds[crit["group_wait"]] < seconds[route["group_wait"]], "critical must page faster"
    assert seconds[crit["repeat_interval"]] < seconds[route["repeat_interval"]]
    dog = by_receiver["watchdog"]
    assert seconds[dog["repeat_interval"]] <= 300, "the Watchdog repeats often"
    assert route["routes"][0]["receiver"] == "watchdog", "Watchdog route must come first"


# ---------------------------------------------------------------- inhibition, for real
@pytest.fixture(scope="module")
def alertmanager_url():
    ref = require_image("ALERTMANAGER_IMAGE")
    cid = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::9093",
         "-v", f"{AM_DIR}:/etc/alertmanager:ro", ref,
         "--config.file=/etc/alertmanager/alertmanager.drill.yml", "--storage.path=/tmp"],
        capture_output=True, text=True, check=True).stdout.strip()
    try:
        port = subprocess.run(["docker", "port", cid, "9093/tcp"], capture_output=True,
                              text=True, check=True).stdout.splitlines()[0].strip()
        url = f"http://{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    logs = subprocess.run(["docker", "logs", cid], capture_output=True, text=True)
                    pytest.fail(f"Alertmanager did not become ready:\n{logs.stderr[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def _post_alerts(url: str, alerts: list[dict]) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": a, "startsAt": now.isoformat(),
             "endsAt": (now + timedelta(minutes=10)).isoformat()} for a in alerts]
    req = urllib.request.Request(url + "/api/v2/alerts", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5)


def test_critical_inhibits_warnings_of_the_same_service_only(alertmanager_url):
    _post_alerts(alertmanager_url, [
        {"alertname": "DemoErrorBudgetBurnFast", "severity": "critical", "service": "inventory"},
        {"alertname": "DemoReadinessFailing", "severity": "warning", "service": "inventory", "check": "store"},
        {"alertname": "DemoHighLatencyP95", "severity": "warning", "service": "shop"},
    ])
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(alertmanager_url + "/api/v2/alerts", timeout=5) as r:
            states = {a["labels"]["alertname"]: a["status"] for a in json.load(r)}
        readiness = states.get("DemoReadinessFailing", {})
        if readiness.get("state") == "suppressed" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert readiness.get("state") == "suppressed" and readiness.get("inhibitedBy"), states
    assert states["DemoHighLatencyP95"]["state"] == "active", "another service's warning stays"
    assert states["DemoErrorBudgetBurnFast"]["state"] == "active"


# ---- entrypoint.sh: settings into a copy, only where the stack's own values are ----------

MINE = """
  - name: mine   # a receiver of the user's own: its addresses are theirs
    email_configs:
      - to: me@example.com
    webhook_configs:
      - url: http://my-hook:9000/x
"""


def test_the_entrypoint_sets_the_stacks_own_addresses_and_never_yours(tmp_path):
    """ALERTMANAGER_EMAIL_TO, ALERTMANAGER_WEBHOOK_URL and GRAFANA_URL reach the rendered
    config and templates where the shipped values are; a receiver the user added keeps its
    own `to` and `url`; the result passes amtool, and the link renders with GRAFANA_URL."""
    ref = require_image("ALERTMANAGER_IMAGE")
    folder, data = tmp_path / "alertmanager", tmp_path / "data"
    folder.mkdir()
    for f in AM_DIR.rglob("*"):
        if f.is_file():
            (folder / f.relative_to(AM_DIR)).parent.mkdir(parents=True, exist_ok=True)
            (folder / f.relative_to(AM_DIR)).write_text(f.read_text())
    (folder / "alertmanager.yml").write_text((AM_DIR / "alertmanager.yml").read_text() + MINE)
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    env = {"ALERTMANAGER_EMAIL_TO": "team@example.com", "ALERTMANAGER_WEBHOOK_URL": "http://hooks.example:9000/am",
           "GRAFANA_URL": "https://grafana.example.com"}
    mounts = ["-v", f"{folder}:/etc/alertmanager:ro", "-v", f"{data}:/alertmanager"]
    p = subprocess.run(["docker", "run", "--rm", "--network", "none", *mounts,
                        *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
                        "--entrypoint", "/bin/sh", ref, "/etc/alertmanager/entrypoint.sh", "--render-only"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    rendered = yaml.safe_load((data / "rendered-config.yml").read_text())
    receivers = {r["name"]: r for r in rendered["receivers"]}
    assert receivers["mine"]["email_configs"][0]["to"] == "me@example.com"
    assert receivers["mine"]["webhook_configs"][0]["url"] == "http://my-hook:9000/x"
    assert receivers["critical"]["email_configs"][0]["to"] == "team@example.com"
    urls = {w["url"] for name, r in receivers.items() if name != "mine" for w in r.get("webhook_configs", [])}
    assert urls == {"http://hooks.example:9000/am"}, urls
    check = subprocess.run(["docker", "run", "--rm", "--network", "none", *mounts, "--entrypoint", "amtool", ref,
                            "check-config", "/alertmanager/rendered-config.yml"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    fixture = REPO / "tests" / "config" / "alertmanager_fixtures" / "one-firing.json"
    link = subprocess.run(["docker", "run", "--rm", "--network", "none", *mounts, "-v", f"{fixture}:/f.json:ro",
                           "--entrypoint", "amtool", ref, "template", "render",
                           "--template.glob=/alertmanager/rendered-templates/*.tmpl", "--template.data=/f.json",
                           '--template.text={{ template "stack.grafana.url" . }}'], capture_output=True, text=True)
    assert link.stdout.strip() == "https://grafana.example.com/d/alerts", link.stdout + link.stderr
