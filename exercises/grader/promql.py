"""Prometheus rule answers: `promtool check rules` and the contract (static), then the
hidden fixtures as promtool unit tests (behaviour). One promtool run per stage for the
whole batch: every answer's folder holds its rules.yml and one test file per criterion."""
from __future__ import annotations

import re

import yaml

from . import tools
from .contract import contract


def alert_rules(text: str) -> list[dict]:
    doc = yaml.safe_load(text) or {}
    return [r for g in doc.get("groups", []) or [] for r in g.get("rules", []) or [] if "alert" in r]


def _check_outcomes(stdout: str, stderr: str, paths: list[str]) -> dict[str, str | None]:
    """path -> None when promtool accepted it, else its first complaint. promtool prints
    'Checking <path>' then '  SUCCESS...' on stdout; complaints go to stderr, prefixed with
    the file's path."""
    ok, current = set(), None
    for line in stdout.splitlines():
        if line.startswith("Checking "):
            current = line[len("Checking "):].strip()
        elif line.strip().startswith("SUCCESS") and current:
            ok.add(current)
    errors = [e.strip() for e in stderr.splitlines() if e.strip()]
    # A complaint without the path (a lint error) is this file's only when it is alone.
    fallback = " ".join(errors[-3:]) if len(paths) == 1 and errors else "promtool refused it"
    return {p: None if p in ok else next((e.split(p + ":", 1)[-1].strip() for e in errors if p in e), fallback)
            for p in paths}


def take_rule(s) -> bool:
    """The answer's one alert rule of the exercise's name, and the contract it keeps;
    True when there is such a rule to go on with."""
    rules = [r for r in alert_rules(s.text) if r.get("alert") == s.ex.spec["alertname"]]
    s.grade.add("static", "one alert rule of that name", len(rules) <= 1,
                "write one rule; `or` joins conditions in one expression")
    s.rule = rules[0] if rules else None
    contract(s.grade, s.ex, s.rule, s.runbook)
    return s.rule is not None


def static(subs) -> list:
    """promtool check rules, then take_rule. Returns the answers that go on to behaviour."""
    paths = tools.stage_files(subs, "PROMETHEUS_IMAGE", "promtool check rules", "rules.yml")
    if not paths:
        return []
    p = tools.run("PROMETHEUS_IMAGE", "promtool", ["check", "rules", *paths], {subs[0].dir.parent: "/w"})
    outcomes = _check_outcomes(p.stdout, p.stderr, paths)
    graded = []
    for s, path in zip(subs, paths):
        complaint = outcomes[path]
        s.grade.add("static", "promtool check rules", complaint is None, complaint or "")
        if complaint is None and take_rule(s):
            graded.append(s)
    return graded


# ---------------------------------------------------------------- behaviour
def _labels(d: dict) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}"


def _firing(alertname: str, by: list[str], where: str = "") -> str:
    sel = f'ALERTS{{alertname="{alertname}", alertstate="firing"{where}}}'
    return (f"count by ({', '.join(by)}) " if by else "count ") + f"({sel})"


def fixture(crit: dict, alertname: str) -> dict:
    """One criterion as a promtool test file over the answer's rules: at each evaluation,
    how many alerts fire, grouped by the labels the page is about."""
    expr = _firing(alertname, crit.get("by", []))
    tests = []
    for ev in crit["evals"]:
        samples = []
        for f in ev.get("firing", []):
            f = dict(f)
            count = f.pop("count", 1)
            samples.append({"labels": _labels(f), "value": count} if f else {"value": count})
        tests.append({"expr": expr, "eval_time": ev["at"], "exp_samples": samples})
    return {"rule_files": ["rules.yml"], "evaluation_interval": crit.get("evaluation_interval", "15s"),
            "tests": [{"interval": crit.get("interval", "15s"), "input_series": crit["series"],
                       "promql_expr_test": tests}]}


TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_]\w*)")
ANNOTATIONS = "the summary and description name only labels the alert has"


def annotations_fixture(crit: dict, rule: dict, alertname: str) -> dict | None:
    """`{{ $labels.job }}` renders empty when the expression drops `job`: at the first
    evaluation where the criterion expects a page, no firing alert may lack a label the
    annotations name."""
    named = sorted({m for v in (rule.get("annotations") or {}).values() for m in TEMPLATE_LABEL.findall(str(v))})
    ev = next((e for e in crit["evals"] if e.get("firing")), None)
    if not named or ev is None:
        return None
    doc = fixture(crit, alertname)
    doc["tests"][0]["promql_expr_test"] = [
        {"expr": _firing(alertname, [], f', {name}=""'), "eval_time": ev["at"], "exp_samples": []} for name in named]
    return doc


def _passed_files(stdout: str) -> set[str]:
    # "Processing test file: /w/sNNN/cMM.yml", then "  SUCCESS" for each file that passed.
    passed, current = set(), None
    for line in stdout.splitlines():
        if m := re.match(r"Processing test file: (/w/\S+\.yml)", line.strip()):
            current = m.group(1)
        elif line.strip() == "SUCCESS" and current:
            passed.add(current)
    return passed


def behaviour(subs) -> None:
    jobs = []   # (submission, criterion name, hint, path in the container)
    for s in subs:
        crits = s.ex.spec.get("behaviour", [])
        for i, crit in enumerate(crits):
            tools.write(s.dir / f"c{i:02d}.yml", yaml.safe_dump(fixture(crit, s.ex.spec["alertname"]), sort_keys=False))
            jobs.append((s, crit["name"], crit["hint"], f"/w/{s.dir.name}/c{i:02d}.yml"))
        firing = next((c for c in crits if any(e.get("firing") for e in c["evals"])), None)
        doc = firing and annotations_fixture(firing, s.rule, s.ex.spec["alertname"])
        if doc:
            tools.write(s.dir / "annotations.yml", yaml.safe_dump(doc, sort_keys=False))
            jobs.append((s, ANNOTATIONS, "a label the expression does not keep renders empty (`{{ $labels.job }}` "
                                         "after `sum by (service)`): name the labels your `by (...)` keeps",
                         f"/w/{s.dir.name}/annotations.yml"))
    if not jobs:
        return
    p = tools.run("PROMETHEUS_IMAGE", "promtool", ["test", "rules", *[j[3] for j in jobs]], {subs[0].dir.parent: "/w"})
    passed = _passed_files(p.stdout)
    for s, name, hint, path in jobs:
        s.grade.add("behaviour", name, path in passed, hint)
