"""The live stage (`make grade N= LIVE=1`): the learner's rule in the running drill-profile
stack, the catalogue's drill applied, the page awaited at the alert sink, its resolution
awaited after the fault is cleared; then the rule file is removed and Prometheus reloaded,
so the stack is as it was."""
from __future__ import annotations

import time

from drills.catalogue import FAULTS
from drills.target import Target, received_at

from scripts.validate import REPO

# Prometheus (drill profile) loads prometheus/rules/*.yml; git ignores these files.
RULES_DIR = REPO / "prometheus" / "rules"
QUIET_S = 180


def _states(target: Target, alertname: str) -> list[str]:
    """The rule's state (inactive, pending, firing) in each group that has it."""
    groups = target.get_json("prometheus", "/api/v1/rules", type="alert")["data"]["groups"]
    return [r["state"] for g in groups for r in g["rules"] if r["name"] == alertname]


def _wait(what, budget: float) -> float | None:
    """Seconds until what() holds, or None when the budget runs out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget:
        if what():
            return time.monotonic() - t0
        time.sleep(2)
    return None


def _at_sink(target: Target, alertname: str, status: str, since: float) -> bool:
    return any(received_at(a) >= since for a in target.sink_alerts(alertname, status=status))


def _inhibited(target: Target, alertname: str) -> str:
    """The alerts muting `alertname` in Alertmanager ("" when none)."""
    by = {a for x in target.alertmanager_alerts() if x["labels"].get("alertname") == alertname
          for a in x["status"].get("inhibitedBy", [])}
    if not by:
        return ""
    names = {x["fingerprint"]: x["labels"].get("alertname", "?") for x in target.alertmanager_alerts()}
    return ", ".join(sorted(names.get(f, f) for f in by))


def run(grade, ex, text: str, target: Target) -> None:
    spec, name = ex.spec["live"], ex.spec["alertname"]
    fault = FAULTS[spec["drill"]]
    path = RULES_DIR / f"exercise-{ex.slug}.yml"
    path.write_text(text)
    path.chmod(0o644)
    try:
        target.compose("kill", "-s", "SIGHUP", "prometheus")
        loaded = _wait(lambda: bool(_states(target, name)), 30) is not None
        grade.add("live", "the stack's Prometheus loads the rule", loaded,
                  "see `make logs SERVICE=prometheus` for why the reload refused it")
        if not loaded:
            return
        # Quiet on the healthy stack: inactive within QUIET_S (an earlier drill's slow or
        # failed requests may still be in the rule's window when it loads).
        quiet = _wait(lambda: _states(target, name) == ["inactive"], QUIET_S) is not None
        grade.add("live", "quiet on the healthy stack", quiet, "it pages before anything is broken: "
                  "look at its value on the healthy stack in Prometheus' graph page")
        since = time.time()
        target.apply(fault)
        muted = ""
        try:
            def delivered() -> bool:
                # Muted by a critical alert of its service counts as delivered, as in a
                # drill: the stack's inhibit rules hold a warning back on purpose.
                nonlocal muted
                muted = _inhibited(target, name)
                return bool(muted) or _at_sink(target, name, "firing", since)
            paged = _wait(delivered, spec["budget_s"])
        finally:
            cleared = time.time()
            target.clear(fault)
        grade.add("live", f"pages at the sink within {spec['budget_s']} s of `{fault.name}` ({fault.what})",
                  paged is not None, spec["hint"])
        grade.live_seconds = {"to_page": None if paged is None else round(paged), "muted_by": muted or None}
        if paged is None:
            return
        if muted:
            grade.add("live", "resolves at the sink after the fault is cleared", None,
                      f"Alertmanager muted it (inhibited by {muted}, a critical alert of the same service "
                      "still firing): grade again once that one has resolved to see it at the sink")
            return
        resolved = _wait(lambda: _at_sink(target, name, "resolved", cleared), spec.get("resolve_s", 300))
        grade.add("live", "resolves at the sink after the fault is cleared", resolved is not None,
                  "keep_firing_for or a long window keeps it firing: a page should end soon after the cause")
        grade.live_seconds["to_resolve"] = None if resolved is None else round(resolved)
    finally:
        path.unlink(missing_ok=True)
        target.compose("kill", "-s", "SIGHUP", "prometheus")
        target.reset()
