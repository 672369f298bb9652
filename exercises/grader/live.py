"""The live stage (`make grade N= LIVE=1`): the learner's rule in the running drill-profile
stack (Prometheus' rules, or Loki's ruler for a LogQL rule), the catalogue's drill applied,
the page awaited at the alert sink, its resolution awaited after the fault is cleared; then
the rule file is removed and the ruler reloaded, so the stack is as it was."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from drills.catalogue import FAULTS
from drills.target import Target, received_at

from scripts.validate import REPO

QUIET_S = 180


@dataclass(frozen=True)
class Ruler:
    """Where a rule file goes in the stack (git ignores exercise-*.yml there), the ruler's
    Prometheus-style rules API, and how it re-reads its files."""
    service: str
    rules_dir: Path
    rules_api: str
    reload: tuple

    def states(self, target: Target, alertname: str, labels: dict) -> list[str]:
        return rule_states(target.get_json(self.service, self.rules_api), alertname, labels)


def rule_states(answer: dict, alertname: str, labels: dict) -> list[str]:
    """From a Prometheus-style rules API answer, the rule's state in each group that has
    it: "inactive", or the states (pending, firing) of its alerts that carry `labels` (the
    drill's: an alert about a service the stack runs without is not this drill's page)."""
    return [",".join(sorted({a.get("state", "") for a in r.get("alerts") or []
                             if all(a.get("labels", {}).get(k) == v for k, v in labels.items())})) or "inactive"
            for g in answer["data"]["groups"] for r in g["rules"] if r.get("name") == alertname]


# The drill profile's Prometheus loads prometheus/rules/*.yml and re-reads them on SIGHUP.
PROMETHEUS = Ruler("prometheus", REPO / "prometheus" / "rules", "/api/v1/rules", ("kill", "-s", "SIGHUP", "prometheus"))
# Loki's ruler reads loki/rules/<tenant>/ (tenant "fake" without auth) as it starts.
LOKI = Ruler("loki", REPO / "loki" / "rules" / "fake", "/prometheus/api/v1/rules", ("restart", "loki"))


def _wait(what, budget: float) -> float | None:
    """Seconds until what() holds, or None when the budget runs out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget:
        try:
            if what():
                return time.monotonic() - t0
        except RuntimeError:
            pass  # a ruler restarting answers nothing for a moment
        time.sleep(2)
    return None


def _at_sink(target: Target, alertname: str, labels: dict, status: str, since: float) -> bool:
    return any(received_at(a) >= since and all(a["labels"].get(k) == v for k, v in labels.items())
               for a in target.sink_alerts(alertname, status=status))


def _inhibited(target: Target, alertname: str) -> str:
    """The alerts muting `alertname` in Alertmanager ("" when none)."""
    by = {a for x in target.alertmanager_alerts() if x["labels"].get("alertname") == alertname
          for a in x["status"].get("inhibitedBy", [])}
    if not by:
        return ""
    names = {x["fingerprint"]: x["labels"].get("alertname", "?") for x in target.alertmanager_alerts()}
    return ", ".join(sorted(names.get(f, f) for f in by))


def not_running(target: Target, ruler: Ruler, fault, needs: list[str]) -> list[str]:
    """The services the stage needs that are not running: the ruler, the fault's, and the
    exercise's own (a stack without Loki loses logs: not the healthy baseline a drill needs)."""
    states = target.states()
    return [s for s in dict.fromkeys((ruler.service, *fault.services, *needs)) if states.get(s) != "running"]


def run(grade, ex, text: str, target: Target, ruler: Ruler) -> None:
    spec, name = ex.spec["live"], ex.spec["alertname"]
    labels = spec.get("labels", {})
    fault = FAULTS[spec["drill"]]
    missing = not_running(target, ruler, fault, spec.get("needs", []))
    if missing:
        grade.skip("live", f"pages at the sink after `{fault.name}`",
                   f"needs {', '.join(missing)} running in the drill stack (make drill-up; an image missing here?)")
        return
    path = ruler.rules_dir / f"exercise-{ex.slug}.yml"
    path.write_text(text)
    path.chmod(0o644)
    try:
        target.compose(*ruler.reload)
        loaded = _wait(lambda: bool(ruler.states(target, name, labels)), 60) is not None
        grade.add("live", f"the stack's {ruler.service} loads the rule", loaded,
                  f"see `make logs SERVICE={ruler.service}` for why it refused it")
        if not loaded:
            return
        # Quiet on the healthy stack: inactive within QUIET_S (an earlier drill's slow or
        # failed requests may still be in the rule's window when it loads).
        quiet = _wait(lambda: ruler.states(target, name, labels) == ["inactive"], QUIET_S) is not None
        grade.add("live", "quiet on the healthy stack", quiet, "it pages before anything is broken: "
                  "look at its value on the healthy stack (Prometheus' graph page, Grafana's Explore for LogQL)")
        since = time.time()
        target.apply(fault)
        muted = ""
        try:
            def delivered() -> bool:
                # Muted by a critical alert of its service counts as delivered, as in a
                # drill: the stack's inhibit rules hold a warning back on purpose.
                nonlocal muted
                muted = _inhibited(target, name)
                return bool(muted) or _at_sink(target, name, labels, "firing", since)
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
            grade.skip("live", "resolves at the sink after the fault is cleared",
                       f"needs {muted} to resolve first: Alertmanager muted this alert (a critical alert of the "
                       "same service still firing); grade again once that one has resolved")
            return
        resolved = _wait(lambda: _at_sink(target, name, labels, "resolved", cleared), spec.get("resolve_s", 300))
        grade.add("live", f"resolves at the sink within {spec.get('resolve_s', 300)} s after the fault is cleared",
                  resolved is not None,
                  "keep_firing_for or a long window keeps it firing: a page should end soon after the cause")
        grade.live_seconds["to_resolve"] = None if resolved is None else round(resolved)
    finally:
        path.unlink(missing_ok=True)
        target.compose(*ruler.reload)
        target.reset()
