#!/usr/bin/env python3
"""`make record-drill SCENARIO=x`: turn the last live drill into a promtool regression test.

After `make drill SCENARIO=x` (its log: build/drills/x.json), this reads, for every alert
the drill saw firing, the raw series its rule reads (through recording rules, down to
what was scraped), over the drill's window from the running Prometheus, and writes
prometheus/tests/drill-x.test.yml: those series in promtool's expanding notation, and an
alert_rule_test that the alert is quiet before the fault and fires at the offset it really
fired at, with the labels and annotations Prometheus gave it. `promtool test rules` then
proves the rule still catches what happened; raise its threshold above what happened and
the test fails.

    python3 drills/record.py SCENARIO [--out FILE] [--lookback 600] [COMPOSE...]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.target import Target  # noqa: E402

LOG_DIR = REPO / "build" / "drills"


RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))


def rule_groups() -> list[dict]:
    """The rule groups of prometheus/rules/, in file order."""
    import yaml

    return [g for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"]]


def rules() -> tuple[dict, dict]:
    """(recording rule name -> expr, alert name -> rule) from prometheus/rules/."""
    recorded, alerts = {}, {}
    for group in rule_groups():
        for r in group["rules"]:
            if "record" in r:
                recorded.setdefault(r["record"], []).append(r["expr"])
            else:
                alerts[r["alert"]] = r
    return recorded, alerts


def evaluation_order() -> list[str]:
    """Every rule group, those that record first. Without `group_eval_order` promtool
    evaluates groups in a random order at each step, so an alert reads a recording rule
    sometimes one evaluation late and its $value (and annotations) differ from run to run."""
    return [g["name"] for g in sorted(rule_groups(), key=lambda g: not any("record" in r for r in g["rules"]))]


def selectors(target: Target, expr: str) -> list[dict]:
    """The vector selectors of a PromQL expression (Prometheus' own parser), with the
    longest range any of them is read over (seconds)."""
    tree = target.get_json("prometheus", "/api/v1/parse_query", query=expr)["data"]
    found = []

    def walk(node, rng: float) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("vectorSelector", "matrixSelector") and node.get("name"):
                found.append({"name": node["name"], "matchers": node.get("matchers", []),
                              "range_s": max(rng, (node.get("range") or 0) / 1000)})
                return
            for v in node.values():
                walk(v, rng)
        elif isinstance(node, list):
            for v in node:
                walk(v, rng)

    walk(tree, 0)
    return found


def raw_selectors(target: Target, expr: str, recorded: dict, seen: set | None = None) -> list[dict]:
    """Down through recording rules to the scraped series an expression reads."""
    seen = seen if seen is not None else set()
    out = []
    for sel in selectors(target, expr):
        if sel["name"] in recorded:
            if sel["name"] not in seen:
                seen.add(sel["name"])
                for e in recorded[sel["name"]]:
                    out += raw_selectors(target, e, recorded, seen)
        else:
            out.append(sel)
    return out


def promql(sel: dict) -> str:
    ops = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}
    m = [f'{x["name"]}{ops[x["type"]]}{json.dumps(x["value"])}' for x in sel["matchers"] if x["name"] != "__name__"]
    return f'{sel["name"]}{{{", ".join(m)}}}' if m else f"{sel['name']}"


def number(v: float) -> str:
    """A value exactly as promtool reads it back: whole numbers in full (a counter or a
    timestamp past 10^6 kept every digit), others as Python's shortest round-trip text."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() and abs(v) < 2 ** 53 else repr(v)


def expanding(values: list[float | None]) -> str:
    """promtool's notation: runs of a constant step as 'a+bxn', gaps as '_'. promtool
    expands 'a+bxn' by adding b n times, so a run goes on only while that addition gives
    the next value exactly."""
    out, i = [], 0
    while i < len(values):
        v = values[i]
        if v is None:
            n = 1
            while i + n < len(values) and values[i + n] is None:
                n += 1
            out.append("_" if n == 1 else f"_x{n}")
            i += n
            continue
        n, acc = 0, v
        step = values[i + 1] - v if i + 1 < len(values) and values[i + 1] is not None else 0.0
        while i + n + 1 < len(values) and values[i + n + 1] is not None and acc + step == values[i + n + 1]:
            acc += step
            n += 1
        out.append(number(v) if n == 0 else f"{number(v)}{'' if number(step).startswith('-') else '+'}{number(step)}x{n}")
        i += n + 1
    return " ".join(out)


def label_text(labels: dict) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def record(target: Target, scenario: str, out: Path, lookback: float, interval: int) -> Path:
    import yaml

    log = json.loads((LOG_DIR / f"{scenario}.json").read_text())
    recorded, alerts = rules()
    fired = [a for a in log["alerts"] if a["firing_s"] is not None]
    if not fired:
        raise SystemExit(f"the last {scenario} drill saw no alert firing: nothing to record")
    start = log["fault_start"] - lookback
    end = log["fault_start"] + max(a["firing_s"] for a in fired) + 10 * interval
    series: dict[str, list] = {}
    for a in fired:
        rule = alerts[a["alertname"]]
        for sel in raw_selectors(target, rule["expr"], recorded):
            body = target.get_json("prometheus", "/api/v1/query_range", query=promql(sel), start=start, end=end,
                                   step=interval)
            for r in body["data"]["result"]:
                points = {round((float(t) - start) / interval): float(v) for t, v in r["values"]}
                steps = round((end - start) / interval)
                series[label_text(r["metric"])] = [points.get(i) for i in range(steps + 1)]
    tests = []
    for a in fired:
        rule = alerts[a["alertname"]]
        # Where it fired live, plus a few evaluations: the recording samples the series at
        # another phase than the live scrapes, and promtool evaluates rule groups in no
        # fixed order (an alert may read a recording rule one evaluation late).
        fire_at = (int(lookback + a["firing_s"]) // interval + 6) * interval
        live = [x for x in target.prometheus_alerts() + [] if x["labels"].get("alertname") == a["alertname"]
                and all(x["labels"].get(k) == v for k, v in a["labels"].items())]
        labels = dict(live[0]["labels"]) if live else {"alertname": a["alertname"], **a["labels"]}
        labels.pop("alertname", None)
        tests += [{"eval_time": f"{int(lookback) - interval}s", "alertname": a["alertname"], "exp_alerts": []},
                  {"eval_time": f"{fire_at}s", "alertname": a["alertname"],
                   "exp_alerts": [{"exp_labels": labels}]}]
    doc = {"rule_files": ["../rules/" + p.name for p in RULE_FILES],
           "evaluation_interval": f"{interval}s",
           "group_eval_order": evaluation_order(),
           "tests": [{"name": f"drill {scenario}, recorded {log['fault_start']:.0f}: quiet before the fault, "
                              f"firing when it fired live", "interval": f"{interval}s",
                      "external_labels": _external_labels(target),
                      "input_series": [{"series": k, "values": expanding(v)} for k, v in sorted(series.items())],
                      "alert_rule_test": tests}]}
    out.write_text(f"# Recorded by `make record-drill SCENARIO={scenario}` from a live drill (drills/record.py).\n"
                   + yaml.safe_dump(doc, sort_keys=False, width=200))
    fill_annotations(out, out.resolve().parent.parent)
    return out


def _external_labels(target: Target) -> dict:
    """The live Prometheus' external labels, expanded (runbook_base renders runbook_url)."""
    import yaml

    config = yaml.safe_load(target.get_json("prometheus", "/api/v1/status/config")["data"]["yaml"])
    return config["global"].get("external_labels", {})


def promtool(test_file: Path, rules_dir: Path = REPO / "prometheus") -> subprocess.CompletedProcess:
    """promtool test rules on `test_file` (inside rules_dir/tests) with the Prometheus image
    the stack runs, the folder mounted read-only."""
    from scripts.validate import image

    rel = test_file.resolve().relative_to(rules_dir.resolve())
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{rules_dir.resolve()}:/p:ro",
                           "-w", "/p", "--entrypoint", "promtool", image("PROMETHEUS_IMAGE"), "test", "rules",
                           str(rel)], capture_output=True, text=True, timeout=120)


def fill_annotations(path: Path, rules_dir: Path) -> None:
    """Annotations carry $value, which only promtool's own evaluation renders exactly: run
    it once, take the annotations it rendered for each expected alert, write them in."""
    import yaml

    result = promtool(path, rules_dir)
    got = re.findall(r'alertname: (\w+), time: ([^,\s]+),\s*\n\s+exp:\[.*?\n\s+got:\[\s*0:\s*Labels:\{(.*?)\}\s*'
                     r'Annotations:\{(.*?)\}', result.stdout + result.stderr, re.S)
    doc = yaml.safe_load(path.read_text())
    for name, when, _labels, rendered in got:
        pairs = dict((k, json.loads(f'"{v}"')) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rendered))
        for t in doc["tests"][0]["alert_rule_test"]:
            if t["alertname"] == name and _seconds(t["eval_time"]) == _seconds(when) and t["exp_alerts"]:
                t["exp_alerts"][0]["exp_annotations"] = pairs
    header = path.read_text().splitlines()[0]
    path.write_text(header + "\n" + yaml.safe_dump(doc, sort_keys=False, width=200))


def _seconds(d: str) -> float:
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", d))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--out", type=Path, help="default: prometheus/tests/drill-SCENARIO.test.yml")
    ap.add_argument("--lookback", type=float, default=600, help="seconds of series before the fault")
    ap.add_argument("--interval", type=int, default=5, help="seconds between samples (the drill profile's)")
    ap.add_argument("compose", nargs="*")
    a = ap.parse_args(argv)
    out = a.out or REPO / "prometheus" / "tests" / f"drill-{a.scenario}.test.yml"
    path = record(Target(a.compose or None), a.scenario, out, a.lookback, a.interval)
    result = promtool(path, path.resolve().parent.parent)
    print(result.stdout[-1500:] + result.stderr[-1500:])
    print(f"written: {path} ({'passes' if result.returncode == 0 else 'FAILS'} `promtool test rules`)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
