"""The stack tiers' end-of-run report, active whichever tier runs (tests/conftest.py
registers it): each stack test's outcome by the signal it proves (`@pytest.mark.signal`),
a verdict per signal, the session's measurements in one summary and in
build/e2e-measurements.json. Also where the tiers are ordered, and skipped as a whole
(one message) when there is no Docker engine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e import stack as st
from tests.tooling import REPO, docker_works, required_images

E2E_DIR = Path(__file__).resolve().parent
# The tiers that run compose stacks, each in a compose project of its own (tests/tiers.py
# runs them side by side).
STACK_DIRS = tuple(E2E_DIR.parent / d for d in ("e2e", "days", "auth", "scale", "forward", "own", "upgrade", "chaos", "history", "bench"))
# One file per tier when the tier runner (tests/tiers.py) runs tiers side by side.
RESULTS_FILE = REPO / "build" / f"{os.environ.get('TEST_TIER') or 'e2e'}-measurements.json"
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
        reason = no_engine_reason()
        if reason:  # one message for the whole tier (terminal summary), not one per test
            _skipped_tier.append(f"e2e tier skipped ({len(e2e_items)} tests): {reason}")
            config._tier_deselected_reason = f"e2e tier: {reason}"  # for tests/conftest.py
            config.hook.pytest_deselected(items=e2e_items)
            items[:] = [it for it in items if it.nodeid not in _signal_of]
            return
    # Alerts first: the error alert's burn-rate windows span the whole (short) history of a
    # young stack, so it resolves soonest then. No-loss and resilience last: they stop,
    # restart and recreate services.
    rank = {"stack": 1, "alerts": 2, "shared": 3, "no-loss": 8, "restarts": 9, "resilience": 10, "scale-out": 11,
            "forwarding": 11.5, "own": 11.7, "upgrade": 11.8, "training": 12, "history": 13, "bounds": 14, "soak": 15, "capacity": 16}
    items.sort(key=lambda it: rank.get(_signal_of[it.nodeid], 5) if it.nodeid in _signal_of else 0)


def signal_of(nodeid: str, default: str = "stack") -> str:
    """The signal a stack test proves (its `signal` mark), as collected."""
    return _signal_of.get(nodeid, default)


def _compose_v2() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0


def no_engine_reason() -> str | None:
    if not docker_works():
        return "no Docker engine (`docker info` fails)"
    if not _compose_v2():
        return "no Docker Compose v2 (`docker compose version` fails)"
    return None


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
    for key, value in m.get("own", {}).items():
        if " " in key:  # the figures the own-things tests recorded
            tr.write_line(f"your own things: {key}: {value}")
    for key, value in m.get("upgrade", {}).items():
        if " " in key:
            tr.write_line(f"upgrade: {key}: {value}")
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
