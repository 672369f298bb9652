"""e2e tier: one session-scoped compose stack on the real docker-compose.yml.

Only services whose images are here (local or pullable) are started; a test names the
services it needs (`@pytest.mark.services(...)`) and skips, naming the image, when one
cannot run (fails instead when CI listed that image in REQUIRED_IMAGES). Without a Docker
engine the whole tier skips with one message. The run ends with a one-line summary of the
signals proven/skipped and the measurements (also written to build/e2e-measurements.json).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from scripts import compose_info
from tests.e2e import clients
from tests.e2e import stack as st
from tests.tooling import COMPOSE_FILE, REPO, docker_works, require_image, required_images

E2E_DIR = Path(__file__).resolve().parent
# The tiers that run compose stacks: the default stack, the scale-out profile, the
# benchmark's smoke run (each its own compose project, one after the other).
STACK_DIRS = (E2E_DIR, E2E_DIR.parent / "scale", E2E_DIR.parent / "forward", E2E_DIR.parent / "chaos",
              E2E_DIR.parent / "history", E2E_DIR.parent / "bench")
RESULTS_FILE = REPO / "build" / "e2e-measurements.json"
_signal_of: dict[str, str] = {}
_outcomes: dict[str, dict[str, tuple[str, str]]] = {}
_skipped_tier: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(d in Path(item.path).parents for d in STACK_DIRS):
            mark = item.get_closest_marker("signal")
            _signal_of[item.nodeid] = mark.args[0] if mark else "stack"
    e2e_items = [it for it in items if it.nodeid in _signal_of]
    if e2e_items and not required_images():
        reason = _no_engine_reason()
        if reason:  # one message for the whole tier (terminal summary), not one per test
            _skipped_tier.append(f"e2e tier skipped ({len(e2e_items)} tests): {reason}")
            config._tier_deselected_reason = f"e2e tier: {reason}"  # for tests/conftest.py
            config.hook.pytest_deselected(items=e2e_items)
            items[:] = [it for it in items if it.nodeid not in _signal_of]
            return
    # Alerts first: the error alert's burn-rate windows span the whole (short) history of a
    # young stack, so it resolves soonest then. No-loss and resilience last: they stop,
    # restart and recreate services.
    rank = {"stack": 1, "alerts": 2, "no-loss": 8, "restarts": 9, "resilience": 10, "scale-out": 11,
            "forwarding": 11.5, "training": 12, "history": 13, "bounds": 14, "soak": 15, "capacity": 16}
    items.sort(key=lambda it: rank.get(_signal_of[it.nodeid], 5) if it.nodeid in _signal_of else 0)


def _compose_v2() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0


def _no_engine_reason() -> str | None:
    if not docker_works():
        return "no Docker engine (`docker info` fails)"
    if not _compose_v2():
        return "no Docker Compose v2 (`docker compose version` fails)"
    return None


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """The default stack on the twins or upstream images; torn down when the e2e package
    is done, before the scale-out tier (tests/scale) brings up its own."""
    if reason := _no_engine_reason():  # only reached when REQUIRED_IMAGES is set
        pytest.fail(f"{reason}, but REQUIRED_IMAGES lists {sorted(required_images())}")
    if not COMPOSE_FILE.exists():
        pytest.fail(f"{COMPOSE_FILE} is missing")
    files = [REPO / f for f in compose_info.compose_files(REPO, user={}, extras=False)]
    project = os.environ.get("E2E_PROJECT", "obs-e2e")
    with st.compose_session(project, files, st.drill_profile(), tmp_path_factory.mktemp("e2e"),
                            st.MEASUREMENTS) as s:
        yield s


@pytest.fixture(scope="package")
def warm(stack: st.Stack) -> st.Stack:
    """Warm-up traffic on top of the load generator: a few direct requests of each kind."""
    if "shop" in stack.running():
        for _ in range(5):
            requests.get(clients.url("shop", "/api/products"), timeout=10)
            requests.get(clients.url("shop", "/api/products/1"), timeout=10)
            requests.post(clients.url("shop", "/api/checkout"), json={"product_id": 1, "quantity": 1}, timeout=10)
    return stack


@pytest.fixture(autouse=True)
def _needed_services(request: pytest.FixtureRequest) -> None:
    """Skip (naming the image) or fail before an e2e test whose services cannot run."""
    mark = request.node.get_closest_marker("services")
    if mark is None:
        return
    signal = _signal_of.get(request.node.nodeid, "stack")
    extra = set(mark.args) - set(st.SIGNALS.get(signal, mark.args))
    assert not extra, f"{request.node.name} needs {extra}, missing from stack.SIGNALS[{signal!r}]"
    s: st.Stack = request.getfixturevalue("stack")
    for svc in mark.args:
        if svc not in s.plan.image_vars:
            pytest.fail(f"test needs {svc!r}, which is not a default service of docker-compose.yml")
        var = s.plan.image_vars[svc]
        if svc in s.plan.missing:
            if var:
                require_image(var)  # skips naming the image, or fails when REQUIRED_IMAGES has it
            reason = f"needs {svc}, which cannot start: {s.plan.missing[svc]}"
            if var in required_images():
                pytest.fail(f"{reason} (and REQUIRED_IMAGES lists {var})")
            pytest.skip(reason)
    containers = s.containers()
    down = {svc: containers.get(svc, {}).get("State", "absent") for svc in mark.args}
    down = {svc: state for svc, state in down.items() if state != "running"}
    if down:
        pytest.fail(f"services were started but are not running now: {down}\n{s.logs(*down)}")


# ---------------------------------------------------------------- end-of-run reporting

def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    signal = _signal_of.get(report.nodeid)
    if signal is None:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        outcome = ("skipped", reason.removeprefix("Skipped: "))
    elif report.failed:
        outcome = ("failed", report.when)
    elif report.when == "call":
        outcome = ("passed", "")
    else:
        return
    previous = _outcomes.setdefault(signal, {}).get(report.nodeid)
    if previous is None or previous[0] == "passed":  # a failed teardown overrides a pass
        _outcomes[signal][report.nodeid] = outcome


def _signal_verdicts() -> dict[str, dict]:
    verdicts = {}
    for signal, tests in sorted(_outcomes.items()):
        kinds = [o for o, _ in tests.values()]
        reasons = sorted({r for o, r in tests.values() if o == "skipped"})
        if "failed" in kinds:
            verdict = "failed"
        elif all(k == "passed" for k in kinds):
            verdict = "proven"
        elif all(k == "skipped" for k in kinds):
            verdict = "skipped"
        else:
            verdict = "partly proven"
        verdicts[signal] = {"verdict": verdict, "skip_reasons": reasons,
                            "tests": {k.split("::")[-1]: v[0] for k, v in tests.items()}}
    return verdicts


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _outcomes:
        return
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({"signals": _signal_verdicts(), **st.MEASUREMENTS},
                                       indent=2, sort_keys=True, default=str) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _skipped_tier:
        terminalreporter.write_line(_skipped_tier[0], yellow=True)
    if not _outcomes:
        return
    verdicts = _signal_verdicts()
    parts = []
    for verdict in ("proven", "partly proven", "failed", "skipped"):
        names = [f"{sig} ({'; '.join(v['skip_reasons'])})" if verdict in ("skipped", "partly proven")
                 and v["skip_reasons"] else sig for sig, v in verdicts.items() if v["verdict"] == verdict]
        if names:
            parts.append(f"{verdict}: {', '.join(names)}")
    tr = terminalreporter
    tr.section("e2e summary")
    tr.write_line("e2e signals -- " + " | ".join(parts))
    m = st.MEASUREMENTS
    if "compose_up_to_healthy_s" in m:
        tr.write_line(f"compose up -> all healthy: {m['compose_up_to_healthy_s']} s "
                      f"({len(m.get('started', []))} services)")
    for alert, secs in m.get("fault_to_notification_s", {}).items():
        tr.write_line(f"fault -> {alert} firing at alert sink: {secs} s")
    for alert, secs in m.get("clear_to_resolved_s", {}).items():
        tr.write_line(f"fault cleared -> {alert} resolved at alert sink: {secs} s")
    if lat := m.get("latency_without_collector_s"):
        tr.write_line(f"shop latency with the collector stopped: median {lat['median_during']} s "
                      f"(before: {lat['median_before']} s), max {lat['max_during']} s")
    for what, counted in m.get("restarts", {}).items():
        tr.write_line(f"kept: {what}: {counted}")
    for what, figures in m.get("forwarding", {}).items():
        tr.write_line(f"forwarding: {what}: {figures}")
    for scenario, counts in m.get("no_loss", {}).items():
        tr.write_line(f"no loss: {scenario}: " + (", ".join(f"{k} {v}" for k, v in counts.items())
                                                  if isinstance(counts, dict) else str(counts)))
    if m.get("peak_memory"):
        total = sum(v["peak_mib"] for v in m["peak_memory"].values())
        tr.write_line("peak memory (MiB, limit): " + ", ".join(
            f"{svc} {v['peak_mib']:.0f}/{v['limit_mib']:.0f}" for svc, v in m["peak_memory"].items())
            + f"; sum of peaks {total:.0f} MiB ({m.get('memory_samples', 0)} samples)")
    if "started" in m:
        tr.write_line("service x signal (+ running, - not started, . not needed):")
        columns = [s for s in [*m["started"], *m.get("not_started", {})] if s not in m.get("one_shot", [])]
        for line in st.matrix(m["started"], columns):
            tr.write_line("  " + line)
    for svc, note in m.get("stand_ins", {}).items():
        tr.write_line(f"stand-in: {svc}: {note}")
    if m.get("not_started"):
        tr.write_line("not started: " + "; ".join(f"{k}: {v}" for k, v in m["not_started"].items()))
    scale = m.get("scale_out", {})
    if "compose_up_to_healthy_s" in scale:
        tr.write_line(f"scale-out profile: up -> healthy {scale['compose_up_to_healthy_s']} s "
                      f"({len(scale.get('started', []))} services)")
    for key, value in scale.items():
        if key[0].isupper() or " " in key:  # the figures the scale-out tests recorded
            tr.write_line(f"scale-out: {key}: {value}")
    for key, value in m.get("training", {}).items():
        if key[0].islower() and " " in key:
            tr.write_line(f"training ground: {key}: {value}")
    for key, value in m.get("bounds", {}).items():
        tr.write_line(f"bounds: {key}: {value}")
    for key, value in m.get("history", {}).items():
        if key[0].isdigit() or " " in key:
            tr.write_line(f"history: {key}: {value}")
    if m.get("soak_smoke"):
        tr.write_line("soak smoke (2 min): " + ", ".join(f"{k} {v}" for k, v in m["soak_smoke"].items()))
    for key, value in m.get("bench_smoke", {}).items():
        tr.write_line(f"capacity smoke: {key}: {value}")
    tr.write_line(f"written to {RESULTS_FILE.relative_to(REPO)}")
