"""The backtest stage: for a rule exercise with a history counterpart (its check's
`backtest:` names the shipped alerts that page the same incidents, and the labels the
learner's alert carries for them), the learner's rule is evaluated over the month
`make history` loaded into the stack's Prometheus (drills/backtest.py), its pages and
misses next to the shipped rule's. Skipped, saying why, without such a month."""
from __future__ import annotations

import json

from drills import backtest as bt
from drills.catalogue import Expect
from scripts.validate import REPO

MANIFEST = REPO / "build" / "history-manifest.json"
SHIPPED_RULES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))


def _month():
    """(manifest, Prometheus, step) of the loaded month, or why there is none."""
    if not MANIFEST.exists():
        return "no month of history here: `make history` loads one (about 2 minutes), then grade again"
    try:
        from drills.target import Target

        target = Target()
        manifest = json.loads(MANIFEST.read_text())
        prometheus = bt.Prometheus.of(target)
        if not bt.history_in(prometheus, manifest):
            return "the stack's Prometheus no longer holds the month of build/history-manifest.json: `make history`"
        return manifest, prometheus, bt.seconds(target.evaluation_interval() or "15s")
    except (RuntimeError, OSError, ValueError) as exc:
        return f"the stack's Prometheus cannot be asked ({exc}): `make up` and `make history`"


def _figures(a: dict | None) -> str:
    if a is None:
        return "no page"
    return f"{a['pages']} pages, caught {a['caught']}/{a['should_catch']}, {a['false_pages']} false"


def run(grade, ex, text: str) -> None:
    if not ex.spec.get("backtest"):
        return
    try:
        _run(grade, ex, text)
    except SystemExit as exc:  # Prometheus refused a query: said, not a crash of the grader
        grade.add("backtest", "over a month of history", None, str(exc))


def _run(grade, ex, text: str) -> None:
    spec = ex.spec["backtest"]
    month = _month()
    if isinstance(month, str):
        grade.add("backtest", "over a month of history", None, month)
        return
    manifest, prometheus, step = month
    shipped = [r for r in bt.alerting_rules(SHIPPED_RULES) if r.alert in spec["reference"]]
    reference = bt.backtest(shipped, manifest, prometheus, step, progress=lambda _: None)
    labels = spec.get("labels", {})  # what the learner's alert carries
    incident = spec.get("incident", labels)  # what the shipped alert's incidents carry

    def theirs(e: Expect) -> bool:
        """An incident's shipped alert of the exercise's part (shop's, not inventory's): each
        of the part's labels present, and equal."""
        return e.alertname in spec["reference"] and all(e.labels.get(k) == v for k, v in incident.items())

    # The learner's alert must page every incident one of the shipped alerts should page.
    windows = [bt.Window(w.name, w.start, w.end,
                         (Expect(ex.spec["alertname"], labels),) if any(map(theirs, w.expect)) else ())
               for w in bt.windows_of(manifest)]
    mine = bt.alerting_rules_text(text)
    pages = []
    for rule in (r for r in mine if r.alert == ex.spec["alertname"]):
        every = rule.interval_s or step
        last = manifest["start"] + (manifest["end"] - manifest["start"]) // every * every
        pages += bt.pages_of(rule, prometheus.evaluations(rule.expr, manifest["start"], manifest["end"], every),
                             every, last)
    yours = bt.score(pages, windows, (manifest["start"], manifest["end"]), bt.HISTORY_GRACE_S)
    a = next((x for x in yours["alerts"] if x["alert"] == ex.spec["alertname"]), None)
    ref_caught = {r["incident"] for r in reference["rows"] if r["verdict"] == "paged"
                  and any(w.name == r["incident"] and w.expect for w in windows)}
    caught = {r["incident"] for r in yours["rows"] if r["verdict"] == "paged"}
    if not ref_caught:  # nothing to compare with: any rule would "catch all the shipped rule catches"
        grade.add("backtest", "catches the planted incidents the shipped rule catches", None,
                  f"the shipped {', '.join(spec['reference'])} catches none of this month's incidents of "
                  f"{incident}: not graded (is the check file's reference or incident right?)")
        return
    ref_text = "; ".join(f"{x['alert']}: {_figures(x)}" for x in reference["alerts"])
    grade.add("backtest", f"over {manifest.get('days') or 0:g} days: catches the planted incidents the shipped rule "
              f"catches (yours: {_figures(a)}; shipped {ref_text})", ref_caught <= caught,
              f"missed: {', '.join(sorted(ref_caught - caught))} (see build/history-manifest.json for when)")
    weeks = (manifest["end"] - manifest["start"]) / bt.WEEK_S
    false = a["false_pages"] if a else 0
    grade.add("backtest", f"pages outside the incidents at most once a week (yours: {false / weeks:.1f} a week)",
              false / weeks <= bt.NOISY_PER_WEEK,
              "it pages when nothing was wrong: " + "; ".join(yours["false_pages"][:3]))
