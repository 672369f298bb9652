#!/usr/bin/env python3
"""`make scorecard [LOG=...]`: how the alert set did against faults that came and went.

From a chaos run's log (build/chaos/*.json, the newest by default) and what Alertmanager
really delivered (the alert sink's stored webhook notifications, turned into pages: from
firing to resolved), scored with the backtest's definitions (drills/backtest.py score):
per fault window, each alert it must fire (drills/catalogue.py), caught or missed, the
time from the fault to the page and from the fault's end to the resolution. An expected
alert Alertmanager held back (inhibited by a critical one on the same service, recorded
by the scheduler as the window ended) counts as caught. Per alert: pages, precision (the
share that belong to a window expecting it), false pages; over the run:
- false pages: pages that start outside every window and its grace;
- flaps: an alert that resolved and fired again within one window and its grace.
The Watchdog is not a page (catalogue NOT_PAGES). A table on stdout, build/scorecard.json
and a timeline (fault windows and pages) in build/scorecard.png.

With MANIFEST=build/history-manifest.json it scores `make history`'s planted incidents
instead: the shipped rules backtested over the history (`make backtest`).

    python3 drills/scorecard.py [--log FILE | --manifest FILE] [--grace 120] [COMPOSE...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.backtest import (Page, Prometheus, Window, alerting_rules, backtest, plot, score,  # noqa: E402
                             seconds, table)
from drills.catalogue import NOT_PAGES, SIGNAL_BACKENDS, Expect  # noqa: E402
from drills.target import Target, received_at  # noqa: E402

OUT_JSON = REPO / "build" / "scorecard.json"


def newest_log() -> Path:
    logs = sorted((REPO / "build" / "chaos").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise SystemExit("no chaos log under build/chaos/: run `make chaos` first (or pass LOG=...)")
    return logs[-1]


def notifications(target: Target, since: float, absent: tuple = ()) -> list[dict]:
    """Webhook alerts the sink received since `since`, oldest first, pages only (and none
    about a service in `absent`, one this stack was run without, paging that it is down, or
    about the signal whose backend it is: its pipeline fails where it cannot deliver)."""
    def about_absent(labels: dict) -> bool:
        return labels.get("service") in absent or SIGNAL_BACKENDS.get(labels.get("signal", "")) in absent

    got = [a for a in target.sink_alerts(limit=10_000) if received_at(a) >= since - 1
           and a["labels"].get("alertname") not in NOT_PAGES and not about_absent(a["labels"])]
    return sorted(got, key=received_at)


def pages(alerts: list[dict]) -> list[Page]:
    """The pages in the sink's notifications: per alert instance, from its firing
    notification (repeats of it are the same page) to its resolved one."""
    open_: dict[tuple, Page] = {}
    out = []
    for a in sorted(alerts, key=received_at):
        key = tuple(sorted(a["labels"].items()))
        if a["status"] == "firing" and key not in open_:
            labels = {k: v for k, v in a["labels"].items() if k != "alertname"}
            open_[key] = Page(a["labels"]["alertname"], labels, received_at(a), None)
            out.append(open_[key])
        elif a["status"] == "resolved" and key in open_:
            open_.pop(key).end = received_at(a)
    return out


def score_chaos(log: dict, alerts: list[dict], grace: float) -> dict:
    """A chaos run's delivered pages against its fault windows (drills/backtest.py score:
    the definitions a backtest uses). An expected alert Alertmanager held back (inhibited,
    as recorded when its window ended) counts as caught."""
    windows = [Window(w["fault"], w["start"], w["end"], tuple(Expect(e["alertname"], e["labels"]) for e in w["expect"]))
               for w in log["windows"]]
    ends = {w["fault"] + str(w["start"]): w for w in log["windows"]}

    def held_back(window: Window, exp: Expect) -> str | None:
        w = ends[window.name + str(window.start)]
        states = next((s for s in w.get("alerts_at_end", []) if s.get("alertname") == exp.alertname
                       and s.get("labels") == exp.labels), {})
        if "suppressed" in states.get("alertmanager", []):
            return "inhibited by " + ", ".join(states.get("inhibited_by") or ["?"])
        return None

    found = pages(alerts)
    span = (log["started"], log.get("ended") or time.time())
    result = score(found, windows, span, grace, held_back)
    result.update({"start": span[0], "end": span[1], "grace_s": grace, "pages": [asdict(p) for p in found],
                   "incidents": [{"name": w.name, "start": w.start, "end": w.end} for w in windows]})
    return result


# ---------------------------------------------------------------- a history's incidents
def score_history(manifest: dict, target: Target, step: float | None = None) -> dict:
    """The shipped alerting rules backtested over the history (drills/backtest.py)."""
    rules = alerting_rules(sorted((REPO / "prometheus" / "rules").glob("*.yml")))
    step = step or seconds(target.evaluation_interval() or "15s")
    return backtest(rules, manifest, Prometheus.of(target), step)


# ---------------------------------------------------------------- output
def _s(x) -> str:
    return "-" if x is None else f"{x:.0f}s"


def print_table(result: dict) -> None:
    rows = result["rows"]
    w = max([len(r["alert"]) for r in rows] + [5])
    print(f"{'incident':18} {'alert':{w}} {'detect':>7} {'resolve':>8} {'flaps':>5}  verdict")
    for r in rows:
        print(f"{r['incident']:18} {r['alert']:{w}} {_s(r['detect_s']):>7} {_s(r['resolve_s']):>8} {r['flaps']:>5}  "
              f"{r['verdict']}")
    print()
    print("\n".join(table(result)))
    print(f"\nrecall {result['recall']}, time to detect median {_s(result['detect_s_median'])} "
          f"max {_s(result['detect_s_max'])}, false pages (outside every incident) {len(result['false_pages'])}, "
          f"flaps {result['flaps']}")
    for page in result["false_pages"]:
        print(f"  false page: {page}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, help="a chaos log (default: the newest under build/chaos/)")
    ap.add_argument("--manifest", type=Path, help="a history manifest (build/history-manifest.json)")
    ap.add_argument("--grace", type=float, default=120, help="seconds after a fault in which its pages count")
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    ap.add_argument("compose", nargs="*", help="the compose command (default: docker compose)")
    a = ap.parse_args(argv)
    target = Target(a.compose or None)
    if a.manifest:
        result, unit = score_history(json.loads(a.manifest.read_text()), target), 86400
    else:
        log_path = a.log or newest_log()
        source = json.loads(log_path.read_text())
        result, unit = score_chaos(source, notifications(target, source["started"]), a.grace), 60
        result["log"] = str(log_path)
    print_table(result)
    a.out.parent.mkdir(exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    try:
        plot(result, a.out.with_suffix(".png"), unit)
        print(f"written: {a.out}, {a.out.with_suffix('.png')}")
    except ImportError:
        print(f"written: {a.out} (no matplotlib here: no timeline; `make scorecard` has it)")
    return 0 if result["recall"] == 1.0 and not result["false_pages"] else 1


if __name__ == "__main__":
    sys.exit(main())
