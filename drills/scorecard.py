#!/usr/bin/env python3
"""`make scorecard [LOG=...]`: how the alert set did against faults that came and went.

From a chaos run's log (build/chaos/*.json, the newest by default) and what Alertmanager
really delivered (the alert sink's stored webhook notifications), per fault window: each
alert it must fire (drills/catalogue.py), fired or missed, the time from the fault to the
page, and the time from the fault's end to the resolved notification. An expected alert
Alertmanager held back (inhibited by a critical one on the same service, recorded by the
scheduler as the window ended) counts as detected, not missed. Over the whole run:
- false pages: firing notifications of an alert no window expected (of any service),
  within a window or outside;
- pages while healthy: firing notifications outside every window and its grace;
- flaps: an alert that resolved and fired again within one window and its grace.
The Watchdog is not a page. A table on stdout, build/scorecard.json and a timeline
(fault windows against each alert's firing time) in build/scorecard.png.

With MANIFEST=build/history-manifest.json it scores `make history`'s planted incidents
instead: nothing was delivered for the past, so each alert rule is evaluated over the
history by Prometheus (query_range of its expression, its `for:` applied).

    python3 drills/scorecard.py [--log FILE | --manifest FILE] [--grace 120] [COMPOSE...]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.catalogue import Expect  # noqa: E402
from drills.target import Target, received_at  # noqa: E402

OUT_JSON = REPO / "build" / "scorecard.json"
NOT_PAGES = {"Watchdog"}


def newest_log() -> Path:
    logs = sorted((REPO / "build" / "chaos").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise SystemExit("no chaos log under build/chaos/: run `make chaos` first (or pass LOG=...)")
    return logs[-1]


def _identity(alert: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in alert["labels"].items()))


def notifications(target: Target, since: float, absent: tuple = ()) -> list[dict]:
    """Webhook alerts the sink received since `since`, oldest first, pages only (and none
    about a service in `absent`: one this stack was run without, paging that it is down)."""
    got = [a for a in target.sink_alerts(limit=10_000) if received_at(a) >= since - 1
           and a["labels"].get("alertname") not in NOT_PAGES and a["labels"].get("service") not in absent]
    return sorted(got, key=received_at)


def score_chaos(log: dict, alerts: list[dict], grace: float) -> dict:
    windows = log["windows"]
    rows, detected_any = [], []
    expected_names = {e["alertname"] for w in windows for e in w["expect"]}
    for w in windows:
        for e in w["expect"]:
            exp = Expect(e["alertname"], e["labels"])
            fired = [a for a in alerts if a["status"] == "firing" and exp.matches(a["labels"])
                     and w["start"] - 1 <= received_at(a) <= w["end"] + grace]
            resolved = [a for a in alerts if a["status"] == "resolved" and exp.matches(a["labels"])
                        and received_at(a) >= w["end"] - 1]
            states = next((s for s in w.get("alerts_at_end", []) if s.get("alertname") == exp.alertname
                           and s.get("labels") == exp.labels), {})
            inhibited = not fired and "suppressed" in states.get("alertmanager", [])
            verdict = "paged" if fired else f"inhibited by {', '.join(states['inhibited_by'])}" if inhibited \
                else "MISSED"
            identities = {}
            for a in sorted((a for a in alerts if exp.matches(a["labels"])
                             and w["start"] - 1 <= received_at(a) <= w["end"] + grace), key=received_at):
                identities.setdefault(_identity(a), []).append(a["status"])
            flaps = sum(sum(1 for x, y in zip(seq, seq[1:]) if (x, y) == ("resolved", "firing"))
                        for seq in identities.values())
            row = {"fault": w["fault"], "start": w["start"], "end": w["end"], "alert": str(exp), "verdict": verdict,
                   "detect_s": round(received_at(fired[0]) - w["start"], 1) if fired else None,
                   "resolve_s": round(received_at(resolved[0]) - w["end"], 1) if resolved else None,
                   "flaps": flaps}
            rows.append(row)
            detected_any.append(verdict != "MISSED")
    covered = [(w["start"] - 1, w["end"] + grace) for w in windows]
    false_pages = [a for a in alerts if a["status"] == "firing" and a["labels"]["alertname"] not in expected_names]
    while_healthy = [a for a in alerts if a["status"] == "firing"
                     and not any(lo <= received_at(a) <= hi for lo, hi in covered)]
    detect = [r["detect_s"] for r in rows if r["detect_s"] is not None]
    return {"rows": rows, "recall": round(sum(detected_any) / len(detected_any), 3) if detected_any else None,
            "false_pages": [_describe(a) for a in false_pages],
            "pages_while_healthy": [_describe(a) for a in while_healthy],
            "flaps": sum(r["flaps"] for r in rows),
            "detect_s_median": statistics.median(detect) if detect else None,
            "detect_s_max": max(detect) if detect else None}


def _describe(a: dict) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity"))
    return f"{a['labels']['alertname']}{{{labels}}} at {time.strftime('%H:%M:%S', time.gmtime(received_at(a)))}"


# ---------------------------------------------------------------- a history's incidents
def alert_rules() -> dict[str, dict]:
    """alertname -> {expr, for_s} from prometheus/rules/*.yml (a small reader: the rule
    files are ours, each `- alert:` followed by `expr:` and maybe `for:`)."""
    import yaml  # the project's venv

    rules = {}
    for f in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(f.read_text())["groups"]:
            for r in group["rules"]:
                if "alert" in r:
                    rules[r["alert"]] = {"expr": r["expr"], "for_s": _seconds(r.get("for", "0s"))}
    return rules


def _seconds(d: str) -> int:
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in re.findall(r"(\d+)([smhd])", d))


def true_intervals(target: Target, expr: str, labels: dict, start: float, end: float, step: int) -> list[tuple]:
    """Where the alert expression holds for the series with `labels`, as (from, to)."""
    body = target.get_json("prometheus", "/api/v1/query_range", query=expr, start=start, end=end, step=step)
    stamps = sorted({float(t) for r in body["data"]["result"]
                     if all(r["metric"].get(k) == v for k, v in labels.items()) for t, _ in r["values"]})
    out = []
    for t in stamps:
        if out and t - out[-1][1] <= step:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [tuple(i) for i in out]


def score_history(manifest: dict, target: Target, step: int = 60) -> dict:
    rules, rows = alert_rules(), []
    for inc in manifest["incidents"]:
        for a in inc["alerts"]:
            rule = rules[a["alertname"]]
            spans = [(lo, hi) for lo, hi in true_intervals(target, rule["expr"], a["labels"], inc["from"] - 3600,
                                                          inc["to"] + 3 * 3600, step)
                     if hi - lo >= rule["for_s"] and hi >= inc["from"] and lo <= inc["to"] + 3600]
            first = spans[0][0] + rule["for_s"] if spans else None
            rows.append({"fault": inc["name"], "start": inc["from"], "end": inc["to"],
                         "alert": str(Expect(a["alertname"], a["labels"])),
                         "verdict": "would page" if spans else "MISSED",
                         "detect_s": round(first - inc["from"]) if first else None,
                         "resolve_s": round(spans[-1][1] - inc["to"]) if spans else None,
                         "flaps": max(0, len(spans) - 1)})
    detected = [r["verdict"] != "MISSED" for r in rows]
    return {"rows": rows, "recall": round(sum(detected) / len(detected), 3) if detected else None,
            "false_pages": [], "pages_while_healthy": [], "flaps": sum(r["flaps"] for r in rows),
            "detect_s_median": statistics.median([r["detect_s"] for r in rows if r["detect_s"] is not None] or [0]),
            "detect_s_max": max([r["detect_s"] for r in rows if r["detect_s"] is not None], default=None)}


# ---------------------------------------------------------------- output
def _s(x) -> str:
    return "-" if x is None else f"{x:.0f}s"


def print_table(result: dict) -> None:
    rows = result["rows"]
    w = max([len(r["alert"]) for r in rows] + [5])
    print(f"{'fault':18} {'alert':{w}} {'detect':>7} {'resolve':>8} {'flaps':>5}  verdict")
    for r in rows:
        print(f"{r['fault']:18} {r['alert']:{w}} {_s(r['detect_s']):>7} {_s(r['resolve_s']):>8} {r['flaps']:>5}  "
              f"{r['verdict']}")
    print(f"\nrecall {result['recall']}, time to detect median {_s(result['detect_s_median'])} "
          f"max {_s(result['detect_s_max'])}, false pages {len(result['false_pages'])}, "
          f"pages while healthy {len(result['pages_while_healthy'])}, flaps {result['flaps']}")
    for what in ("false_pages", "pages_while_healthy"):
        for page in result[what]:
            print(f"  {what.replace('_', ' ')}: {page}")


def plot(result: dict, alerts: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min([r["start"] for r in result["rows"]] + [received_at(a) for a in alerts] or [time.time()])
    names = sorted({a["labels"]["alertname"] + "{" + a["labels"].get("service", "") + "}" for a in alerts})
    fig, ax = plt.subplots(figsize=(12, 1.5 + 0.4 * (len(names) + 1)))
    for r in result["rows"]:
        ax.axvspan((r["start"] - t0) / 60, (r["end"] - t0) / 60, color="tab:red", alpha=0.12)
        ax.text((r["start"] - t0) / 60, len(names) + 0.2, r["fault"], fontsize=7, rotation=20)
    for i, name in enumerate(names):
        firing = None
        for a in sorted((a for a in alerts if a["labels"]["alertname"] + "{" + a["labels"].get("service", "") + "}"
                         == name), key=received_at):
            t = (received_at(a) - t0) / 60
            if a["status"] == "firing" and firing is None:
                firing = t
            elif a["status"] == "resolved" and firing is not None:
                ax.plot([firing, t], [i, i], color="tab:blue", linewidth=6, solid_capstyle="butt")
                firing = None
        if firing is not None:
            ax.plot([firing, (time.time() - t0) / 60], [i, i], color="tab:blue", linewidth=6, alpha=0.5)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-1, len(names) + 1)
    ax.set_xlabel("minutes (shaded: a fault was on; bars: the alert firing, from its page to its resolution)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


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
        source = json.loads(a.manifest.read_text())
        result, alerts = score_history(source, target), []
    else:
        log_path = a.log or newest_log()
        source = json.loads(log_path.read_text())
        alerts = notifications(target, source["started"])
        result = score_chaos(source, alerts, a.grace)
        result["log"] = str(log_path)
    result["grace_s"] = a.grace
    print_table(result)
    a.out.parent.mkdir(exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    try:
        plot(result, alerts, a.out.with_suffix(".png"))
        print(f"written: {a.out}, {a.out.with_suffix('.png')}")
    except ImportError:
        print(f"written: {a.out} (no matplotlib here: no timeline; `make scorecard` has it)")
    return 0 if result["recall"] == 1.0 and not result["false_pages"] else 1


if __name__ == "__main__":
    sys.exit(main())
