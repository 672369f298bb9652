"""Loki rule answers (exercise 12): the rule file read as a ruler reads it and the contract
(static); then, with the stack's Loki image, one Loki for the whole batch:

- each answer's rule file loaded into Loki's ruler under a tenant of its own (the ruler
  lists a group only once every expression in it parsed): "LogQL that Loki's ruler accepts";
- each criterion's log lines pushed under a tenant of their own, as the stack's Loki stores
  the demo's OTLP records (the message as the line, the record's attributes such as
  `exception_type` as structured metadata), at times in the last hour; the rule's
  expression evaluated by Loki over them at the criterion's evaluation times, over the
  rule's `for:` (a series fires when it is present at every 15 s step of the hold).

Without the image the stage does not run and the answer is not graded (it never passes)."""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

import yaml

from scripts.validate import REPO, image

from . import tools
from .promql import take_rule

STEP_S = 15
# Fixture times are offsets from a start this far in the past (Loki accepts and answers them).
HISTORY_S = 3600


def static(subs) -> list:
    graded = []
    for s in subs:
        try:
            doc = yaml.safe_load(s.text) or {}
            groups = doc.get("groups") if isinstance(doc, dict) else None
            readable = isinstance(groups, list) and bool(groups) and all(isinstance(g, dict) for g in groups)
            why = "the file holds `groups:`, each with a name and rules, as a Prometheus rule file"
        except yaml.YAMLError as e:
            readable, why = False, str(e).splitlines()[0]
        s.grade.add("static", "YAML a Loki ruler reads (groups: [{name, rules}])", readable, why)
        if readable and take_rule(s):
            graded.append(s)
    return graded


def _seconds(d) -> float:
    if d in (None, ""):
        return 0.0
    total = 0.0
    for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", str(d)):
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[unit]
    return total


def config() -> str:
    """The stack's loki.yml, made multi-tenant (a tenant per answer and per criterion),
    writable under /tmp, reading the batch's rules, quick to become ready."""
    cfg = yaml.safe_load((REPO / "loki" / "loki.yml").read_text())
    cfg["auth_enabled"] = True
    common = cfg["common"]
    common["path_prefix"] = "/tmp/loki"
    common["storage"]["filesystem"] = {"chunks_directory": "/tmp/loki/chunks", "rules_directory": "/w/rules"}
    cfg["ruler"] = {"rule_path": "/tmp/loki/ruler-scratch", "enable_api": True, "evaluation_interval": "15s"}
    cfg["compactor"]["working_directory"] = "/tmp/loki/compactor"
    cfg["compactor"]["retention_enabled"] = False
    cfg["limits_config"]["reject_old_samples"] = False
    cfg.setdefault("ingester", {}).setdefault("lifecycler", {}).update(min_ready_duration="0s", final_sleep="0s")
    return yaml.safe_dump(cfg, sort_keys=False)


def lines(stream: dict, start_ns: int) -> list[list]:
    """A fixture stream's entries: each `{at, line, metadata?, every?, count?}` repeated
    `count` times `every` apart."""
    values = []
    for e in stream["lines"]:
        for i in range(e.get("count", 1)):
            ts = start_ns + int((_seconds(e["at"]) + i * _seconds(e.get("every", "0s"))) * 1e9)
            values.append([str(ts), e["line"], *([e["metadata"]] if e.get("metadata") else [])])
    return sorted(values, key=lambda v: int(v[0]))


class Loki:
    def __init__(self, base: str):
        self.base = base

    def call(self, path: str, tenant: str, params: dict | None = None, body: dict | None = None):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-Scope-OrgID": tenant, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace").strip()

    def ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(self.base + "/ready", timeout=3) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Loki ({image('LOKI_IMAGE')}) was not ready within {timeout_s:.0f} s")
            time.sleep(0.5)

    def loaded(self, tenant: str, alertname: str) -> bool:
        status, body = self.call("/prometheus/api/v1/rules", tenant)
        return status == 200 and any(r.get("name") == alertname for g in body["data"]["groups"] for r in g["rules"])

    def firing(self, expr: str, tenant: str, at_s: float, hold_s: float,
               keep_s: float) -> tuple[list[dict] | None, str]:
        """The alerts a rule with this `for:` and `keep_firing_for:` has firing at `at`
        (firing_at over Loki's answer), or None and Loki's complaint."""
        n_hold, n_keep = steps(hold_s), steps(keep_s)
        status, body = self.call("/loki/api/v1/query_range", tenant, {
            "query": expr, "start": str(int((at_s - (n_hold + n_keep) * STEP_S) * 1e9)), "end": str(int(at_s * 1e9)),
            "step": f"{STEP_S}s"})
        if status != 200:
            return None, str(body)[-300:]
        return firing_at(body["data"]["result"], at_s, hold_s, keep_s), ""


def steps(seconds: float) -> int:
    return -int(-seconds // STEP_S)  # whole evaluation steps, rounded up


def firing_at(result: list[dict], at_s: float, hold_s: float, keep_s: float) -> list[dict]:
    """From a range query's matrix at STEP_S steps ending at `at`: the series present at
    every step of [t - hold, t] for some step t in [at - keep, at], as a ruler evaluating
    every STEP_S would have them firing at `at`."""
    n_hold, n_keep = steps(hold_s), steps(keep_s)
    firing = []
    for r in result:
        seen = {round(float(ts)) for ts, _ in r["values"]}
        if any(all(round(at_s - (i + k) * STEP_S) in seen for k in range(n_hold + 1)) for i in range(n_keep + 1)):
            firing.append(r["metric"])
    return firing


def _matches(got: list[dict], want: list[dict], by: list[str]) -> bool:
    """As promtool's `count by (by) (ALERTS)` against the expected samples."""
    have = Counter(tuple(m.get(k, "") for k in by) for m in got)
    need: Counter = Counter()
    for w in want:
        need[tuple(str(w.get(k, "")) for k in by)] += w.get("count", 1)
    return have == need


def behaviour(subs) -> None:
    if not subs:
        return
    why = tools.needs("LOKI_IMAGE")
    crits_of = {s.dir.name: s.ex.spec.get("behaviour", []) for s in subs}
    if why:
        for s in subs:
            s.grade.skip("static", "LogQL that Loki's ruler accepts", why)
            for crit in crits_of[s.dir.name]:
                s.grade.skip("behaviour", crit["name"], why)
        return
    work = subs[0].dir.parent
    tools.write(work / "loki.yml", config())
    for s in subs:
        d = work / "rules" / s.dir.name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        (work / "rules").chmod(0o755)
        tools.write(d / "rules.yml", s.text)
    cid = subprocess.run(["docker", "run", "-d", "--rm", "-p", "127.0.0.1::3100", "-v", f"{work}:/w:ro",
                          image("LOKI_IMAGE"), "-config.file=/w/loki.yml", "-config.expand-env=true"],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        port = subprocess.run(["docker", "port", cid, "3100/tcp"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0].split(":")[-1].strip()
        loki = Loki(f"http://127.0.0.1:{port}")
        try:
            loki.ready()
        except RuntimeError as e:
            logs = subprocess.run(["docker", "logs", "--tail", "20", cid], capture_output=True, text=True)
            raise RuntimeError(f"{e}:\n{logs.stdout}{logs.stderr}") from None
        start_s = int(time.time()) - HISTORY_S
        # Every criterion's lines once (the same for every answer), each under its own tenant.
        for i, crit in enumerate(subs[0].ex.spec.get("behaviour", [])):
            streams = [{"stream": st["labels"], "values": lines(st, start_s * 10**9)} for st in crit["streams"]]
            status, body = loki.call("/loki/api/v1/push", f"c{i:02d}", body={"streams": streams})
            if status >= 300:
                raise RuntimeError(f"Loki refused the fixture lines of {crit['name']!r}: HTTP {status} {body}")
        deadline = time.monotonic() + 20  # the ruler loads the tenants' files as it starts
        pending = {s.dir.name for s in subs}
        while pending and time.monotonic() < deadline:
            pending = {s.dir.name for s in subs if s.dir.name in pending
                       and not loki.loaded(s.dir.name, s.ex.spec["alertname"])}
            time.sleep(0.5 if pending else 0)
        for s in subs:
            expr = str(s.rule.get("expr", ""))
            hold, keep = _seconds(s.rule.get("for")), _seconds(s.rule.get("keep_firing_for"))
            results, complaint = [], ""
            for i, crit in enumerate(crits_of[s.dir.name]):
                ok = True
                for ev in crit["evals"]:
                    got, said = loki.firing(expr, f"c{i:02d}", start_s + _seconds(ev["at"]), hold, keep)
                    complaint = complaint or said
                    ok = ok and got is not None and _matches(got, ev.get("firing", []), crit.get("by", []))
                results.append((crit, ok))
            s.grade.add("static", "LogQL that Loki's ruler accepts", s.dir.name not in pending,
                        f"Loki's ruler did not load it; Loki says: {complaint or 'see its logs for the rule file'}")
            for crit, ok in results:
                s.grade.add("behaviour", crit["name"], ok, crit["hint"])
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
