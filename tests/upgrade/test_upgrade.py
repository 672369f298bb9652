"""Upgrades keep every store's data: the previous minor releases write samples, traces (in
Badger), a silence, the notification log, the sink's notifications and telemetry queued on
the collector's disk; `make upgrade` checks the new images and configs, then starts the
current pins on the same volumes; each item is counted by id afterwards. Going back one
version is then tried per component: it works (and finds the data), or it fails loudly
and leaves the volume exactly as it was."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.days.test_restarts import State, queue_for_jaeger, wait_ready
from tests.e2e import stack as st
from tests.e2e.test_no_loss import wait_all_stored
from tests.tooling import REPO, image

from .conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.signal("upgrade")]
STATEFUL = {"prometheus": ("PROMETHEUS_IMAGE", "prometheus-data"), "alertmanager": ("ALERTMANAGER_IMAGE", "alertmanager-data"),
            "jaeger": ("JAEGER_IMAGE", "jaeger-data"), "otel-collector": ("OTELCOL_IMAGE", "otelcol-queue")}


def images_running(stack: st.Stack) -> dict[str, str]:
    rows = stack.containers()
    out = {}
    for svc in STATEFUL:
        cid = rows.get(svc, {}).get("ID")
        if cid:
            out[svc] = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", cid], capture_output=True,
                                      text=True, check=True).stdout.strip()
    return out


@pytest.fixture(scope="module")
def written(old: st.Stack) -> dict:
    """Everything the old versions write, before the upgrade."""
    running = images_running(old)
    assert running == {svc: image(var.replace("_IMAGE", "_PREVIOUS_IMAGE")) for svc, (var, _) in STATEFUL.items()}, running
    state = State(old, section="upgrade")
    queued = queue_for_jaeger(old)  # Jaeger stopped: the collector holds these on disk
    return {"state": state, "queued": queued}


def test_make_upgrade_moves_to_the_pins_and_every_item_is_still_there(old: st.Stack, written: dict, tmp_path) -> None:
    report = tmp_path / "upgrade.json"
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "upgrade.py"), "--report", str(report), *old.current],
                       cwd=REPO, capture_output=True, text=True, timeout=1800)
    FIGURES["make upgrade (validate, stop, start, healthy) s"] = round(time.monotonic() - t0)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    old.compose_cmd = old.current  # from now on the project is the current one
    wait_ready(old, [s for s in old.plan.start if s not in old.plan.one_shot])
    assert images_running(old) == {svc: image(var) for svc, (var, _) in STATEFUL.items()}
    result = json.loads(report.read_text())
    # Its table counts what was really there: a row with something in it for each store the
    # old versions wrote to and that ran (Jaeger was stopped to queue traces: counted below).
    counted = {r["store"] for r in result["kept"] if r["before"]}
    assert {"prometheus", "alertmanager", "alert-sink"} <= counted, result["kept"]
    assert all(r["kept"] for r in result["kept"]), result["kept"]
    FIGURES["make upgrade's own table"] = [f"{r['store']} {r['item']}: {r['before']} -> {r['after']}"
                                           for r in result["kept"]]
    state: State = written["state"]
    state.check("*", "the upgrade")
    queued = written["queued"]
    got = wait_all_stored(queued, 240, "the traces the old collector queued reach the new Jaeger")
    FIGURES["queued traces after the upgrade"] = f"{got}/{len(queued)}"
    assert got == len(queued)


def volume_digest(stack: st.Stack, volume: str) -> str:
    """Every file of a volume with its size and checksum, read through a throwaway container."""
    name = f"{stack.project}_{volume}"
    p = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{name}:/v:ro", "--entrypoint", "sh",
                        image("PROMETHEUS_IMAGE"), "-c", "cd /v && find . -type f | sort | xargs -r sha256sum"],
                       capture_output=True, text=True, timeout=300, check=True)
    return p.stdout


@pytest.mark.parametrize("service", list(STATEFUL))
def test_going_back_one_version_works_or_fails_loudly_without_touching_the_volume(old: st.Stack, written: dict,
                                                                                   service: str) -> None:
    var, volume = STATEFUL[service]
    previous = image(var.replace("_IMAGE", "_PREVIOUS_IMAGE"))
    old.compose("stop", service)
    before = volume_digest(old, volume)
    try:
        # With the previous release's compose files: its image, and for the collector the
        # stack's config without the receivers its twin lacks (else it refuses the config,
        # which says nothing about its data).
        back = subprocess.run([*old.previous, "up", "-d", "--wait", "--wait-timeout", "120", "--no-deps", service],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
        old.refresh_endpoints()
        if back.returncode == 0:
            FIGURES[f"back to the previous {service}"] = f"works ({previous})"
            if service in ("prometheus", "alertmanager", "jaeger"):
                written["state"].check(service, f"going back to {previous}")
        else:
            old.compose("stop", service)
            assert volume_digest(old, volume) == before, f"{previous} failed to start and changed {volume}"
            FIGURES[f"back to the previous {service}"] = f"refused loudly, {volume} untouched"
    finally:
        old.compose("up", "-d", "--wait", "--no-deps", service, timeout=600)
        wait_ready(old, [service])
