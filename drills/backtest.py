#!/usr/bin/env python3
"""`make backtest RULES=path [DAYS=30]`: how the alerting rules of a file would have paged
over a month with planted incidents, before the file is merged.

On the stack's Prometheus, holding `make history`'s month (loaded first when
build/history-manifest.json is missing, of another length, or not in Prometheus), every
alerting rule of the file is evaluated over the month as Prometheus' rule manager would:
a range query of its expression at the evaluation step (the group's `interval`, else the
stack's evaluation_interval), then its `for:` (pending until the expression held that
long) and `keep_firing_for:` (still firing that long after the expression emptied) give
its pages, each from firing to resolved. Each page is matched with the planted incidents
(drills/catalogue.py PLANTED: when, and the alerts each must page).

Per alert: pages, pages per week, incidents caught of those it should catch, precision
(pages that start within an incident it should catch, or its grace after), false pages
(pages outside every incident), time to detect and to resolve (median and max), its
longest page, and a verdict (ok, noisy, deaf, misses). A table on stdout, build/backtest.json
and a timeline (incidents and pages on one time axis) in build/backtest.png.

The same definitions score a chaos run's delivered pages (drills/scorecard.py): `score`.

    python3 drills/backtest.py RULES [RULES...] [--days 30] [--step S] [--grace 900]
                               [--out build/backtest.json] [-- COMPOSE...]
    python3 drills/backtest.py --docs build/backtest-shipped.json   (docs/backtest.md from it)
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.catalogue import NOT_PAGES, Expect  # noqa: E402

OUT_JSON = REPO / "build" / "backtest.json"
WEEK_S = 7 * 86400
# A page that starts this long after its incident ended still counts as the incident's:
# the history's recording rules are evaluated every 5 minutes, and a `for:` adds its own.
HISTORY_GRACE_S = 900
# Prometheus answers at most 11,000 points per series in one range query.
POINTS_PER_QUERY = 10_000
# A verdict: noisy when the pages outside every incident exceed this many a week.
NOISY_PER_WEEK = 1.0


# ---------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    alert: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict = field(default_factory=dict)  # the rule's own labels (templated ones left out)
    interval_s: float | None = None             # its group's evaluation interval, if set


def seconds(text: str | int | float | None) -> float:
    """A Prometheus duration ("1h30m", "500ms", "2d", "1w") in seconds."""
    if text is None:
        return 0.0
    if isinstance(text, (int, float)):
        return float(text)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)


def alerting_rules(paths: list[Path]) -> list[Rule]:
    """The alerting rules of rule files, in file order; a clear error on a file that is not one."""
    rules = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as exc:
            raise SystemExit(f"{path}: cannot be read: {exc}") from None
        rules += alerting_rules_text(text, str(path))
    return rules


def alerting_rules_text(text: str, where: str = "the rule file") -> list[Rule]:
    """The alerting rules of a rule file's text."""
    import yaml  # the project's venv

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SystemExit(f"{where}: not YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        raise SystemExit(f"{where}: not a Prometheus rule file (no `groups:` list)")
    rules = []
    for group in doc["groups"]:
        interval = seconds(group["interval"]) if group.get("interval") else None
        for r in group.get("rules") or []:
            if "alert" in r:
                labels = {k: str(v) for k, v in (r.get("labels") or {}).items() if "{{" not in str(v)}
                rules.append(Rule(r["alert"], r["expr"], seconds(r.get("for")), seconds(r.get("keep_firing_for")),
                                  labels, interval))
    return rules


# ---------------------------------------------------------------- the rule manager's states
@dataclass
class Page:
    """One firing episode of one alert instance: fired at `start`, resolved at `end`
    (None: still firing when the period looked at ended)."""
    alertname: str
    labels: dict
    start: float
    end: float | None

    def duration(self, until: float) -> float:
        return (self.end if self.end is not None else until) - self.start


def episodes(present: list[float], step: float, for_s: float, keep_s: float, last: float) -> list[tuple]:
    """Firing episodes (fired, resolved or None) of one alert instance from the evaluation
    times at which its expression returned it, as Prometheus' rule manager (rules/alerting.go,
    Eval) turns them into states: a new element is pending from that evaluation and fires at
    the first evaluation at least `for` after it; an evaluation without it drops a pending
    alert and resolves a firing one, unless `keep_firing_for` holds it: firing until an
    evaluation at least that long after the first one without it. `last`: the final
    evaluation time looked at."""
    out: list[list] = []
    runs = []  # runs of consecutive evaluations that returned the element
    for t in present:
        if runs and t - runs[-1][1] <= step * 1.5:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    firing = None  # the open episode, continued by keep_firing_for across a gap
    for a, b in runs:
        if firing is not None and a < firing[1]:
            start = None  # held by keep_firing_for into this run: still the same page
        else:
            if firing is not None:
                out.append(firing)
                firing = None
            start = a + math.ceil(for_s / step - 1e-9) * step  # the first evaluation >= for after a
            if start > b:
                continue  # pending, then dropped
        if firing is None:
            firing = [start, None]
        # The first evaluation without it is b + step; kept firing until an evaluation
        # at least keep_s after that one.
        firing[1] = b + step + (math.ceil(keep_s / step - 1e-9) * step if keep_s else 0)
    if firing is not None:
        out.append(firing)
    return [(s, None if e > last else e) for s, e in out]


def pages_of(rule: Rule, series: dict[tuple, list[float]], step: float, last: float) -> list[Page]:
    """The rule's pages from {labels of an element: evaluation times that returned it}."""
    # An alert instance is its element's labels without the metric name, with the rule's
    # labels set (rules/alerting.go): the branches of an `or` that return other names of
    # the same labels are one alert.
    instances: dict[tuple, set] = {}
    for key, stamps in series.items():
        labels = {k: v for k, v in key if k != "__name__"} | rule.labels
        instances.setdefault(tuple(sorted(labels.items())), set()).update(stamps)
    pages = [Page(rule.alert, dict(key), start, end) for key, stamps in instances.items()
             for start, end in episodes(sorted(stamps), step, rule.for_s, rule.keep_firing_for_s, last)]
    return sorted(pages, key=lambda p: p.start)


# ---------------------------------------------------------------- Prometheus
class Prometheus:
    """The range queries of a backtest, against one Prometheus (base URL)."""

    def __init__(self, base: str, workers: int = 2, login=None):
        self.base = base.rstrip("/")
        self.workers = workers  # Prometheus answers a query on one core: two at once use two
        self.login = login  # compose_info.Login: HTTPS and the login where the stack is shared

    @classmethod
    def of(cls, target) -> "Prometheus":
        """The stack's Prometheus, as a drills Target reaches it."""
        return cls(target.url("prometheus"), login=target.login)

    def get(self, path: str, **params) -> dict:
        import urllib.parse

        from drills.target import http

        status, body = http("GET", f"{self.base}{path}?{urllib.parse.urlencode(params)}", timeout=300,
                            login=self.login)
        if status == 200:
            return body
        if isinstance(body, dict):
            body = body.get("error", body)
        raise SystemExit(f"Prometheus refused {params.get('query', path)!r}: {body}")

    def evaluations(self, expr: str, start: float, end: float, step: float) -> dict[tuple, list[float]]:
        """{labels of an element: the evaluation times (start + k * step) that returned it},
        in range queries of at most POINTS_PER_QUERY steps, two at once."""
        chunks, t = [], start
        while t <= end:
            chunks.append((t, min(end, t + (POINTS_PER_QUERY - 1) * step)))
            t += POINTS_PER_QUERY * step
        found: dict[tuple, list[float]] = {}
        with ThreadPoolExecutor(self.workers) as pool:
            for body in pool.map(lambda c: self.get("/api/v1/query_range", query=expr, start=c[0], end=c[1],
                                                    step=step), chunks):
                for r in body["data"]["result"]:
                    key = tuple(sorted(r["metric"].items()))
                    found.setdefault(key, []).extend(float(ts) for ts, _ in r.get("values", []))
        return found


# ---------------------------------------------------------------- scoring (backtests and chaos runs)
@dataclass(frozen=True)
class Window:
    """An incident (planted, or a live fault's window): when, and the alerts it must page."""
    name: str
    start: float
    end: float
    expect: tuple  # Expect


def windows_of(manifest: dict) -> list[Window]:
    return [Window(i["name"], i["from"], i["to"], tuple(Expect(a["alertname"], a["labels"]) for a in i["alerts"]))
            for i in manifest["incidents"]]


def _median(xs: list) -> float | None:
    return statistics.median(xs) if xs else None


def score(pages: list[Page], windows: list[Window], span: tuple[float, float], grace: float,
          held_back=None) -> dict:
    """Pages against incidents, the definitions for backtests and chaos runs alike.
    - a page matches an incident when the incident expects it (alert name and labels) and
      it starts within the incident or `grace` after its end;
    - an incident's expected alert is caught when a page matches it (or `held_back`,
      given (window, expect), names why a page was rightly held back: inhibited);
    - a false page starts outside every incident and its grace;
    - precision: the share of an alert's pages that match an incident it should catch.
    Returns rows (one per incident and expected alert), alerts (one per alert name),
    false pages, recall and detection figures."""
    weeks = max(span[1] - span[0], 1) / WEEK_S

    def inside(p: Page, w: Window) -> bool:
        return w.start <= p.start <= w.end + grace

    def matches(p: Page, w: Window, e: Expect) -> bool:
        return inside(p, w) and e.matches({**p.labels, "alertname": p.alertname})

    pages = [p for p in pages if p.alertname not in NOT_PAGES]
    rows = []
    for w in windows:
        for e in w.expect:
            hits = [p for p in pages if matches(p, w, e)]
            why = None if hits or held_back is None else held_back(w, e)
            ends = [p.end for p in hits]
            rows.append({"incident": w.name, "start": w.start, "end": w.end, "alert": str(e),
                         "alertname": e.alertname, "pages": len(hits),
                         "verdict": "paged" if hits else f"held back: {why}" if why else "MISSED",
                         "detect_s": round(min(p.start for p in hits) - w.start) if hits else None,
                         "resolve_s": round(max(ends) - w.end) if hits and None not in ends else None,
                         # a page that resolved and fired again for the same incident
                         "flaps": max(0, len(hits) - len({tuple(sorted(p.labels.items())) for p in hits}))})
    false_pages = [p for p in pages if not any(inside(p, w) for w in windows)]
    alerts = []
    for name in sorted({p.alertname for p in pages} | {r["alertname"] for r in rows}):
        mine = [p for p in pages if p.alertname == name]
        targets = [r for r in rows if r["alertname"] == name]
        true = [p for p in mine if any(matches(p, w, e) for w in windows for e in w.expect if e.alertname == name)]
        false = [p for p in false_pages if p.alertname == name]
        caught = [r for r in targets if r["verdict"] != "MISSED"]
        detect = [r["detect_s"] for r in caught if r["detect_s"] is not None]
        resolve = [r["resolve_s"] for r in caught if r["resolve_s"] is not None]
        precision = round(len(true) / len(mine), 3) if mine else None
        verdict = []
        if false and (len(false) / weeks > NOISY_PER_WEEK or (precision or 0) < 0.5):
            verdict.append("noisy")
        if targets and not caught:
            verdict.append("deaf")
        elif len(caught) < len(targets):
            verdict.append(f"misses {len(targets) - len(caught)}")
        alerts.append({
            "alert": name, "pages": len(mine), "pages_per_week": round(len(mine) / weeks, 2),
            "should_catch": len(targets), "caught": len(caught), "precision": precision,
            "false_pages": len(false), "false_per_week": round(len(false) / weeks, 2),
            "false_hours": round(sum(p.duration(span[1]) for p in false) / 3600, 1),
            "detect_s_median": _median(detect), "detect_s_max": max(detect, default=None),
            "resolve_s_median": _median(resolve), "resolve_s_max": max(resolve, default=None),
            "longest_page_s": round(max((p.duration(span[1]) for p in mine), default=0)) or None,
            "verdict": ", ".join(verdict) or ("ok" if mine or targets else "quiet")})
    caught_rows = [r["verdict"] != "MISSED" for r in rows]
    detect = [r["detect_s"] for r in rows if r["detect_s"] is not None]
    return {"rows": rows, "alerts": alerts,
            "recall": round(sum(caught_rows) / len(caught_rows), 3) if caught_rows else None,
            "false_pages": [describe(p) for p in false_pages],
            "flaps": sum(r["flaps"] for r in rows),
            "detect_s_median": _median(detect), "detect_s_max": max(detect, default=None)}


def describe(p: Page) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(p.labels.items()) if k not in ("alertname", "severity"))
    until = "still firing" if p.end is None else f"for {_dur(p.end - p.start)}"
    return f"{p.alertname}{{{labels}}} at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(p.start))} {until}"


# ---------------------------------------------------------------- a backtest
def backtest(rules: list[Rule], manifest: dict, prometheus: Prometheus, step: float,
             grace: float = HISTORY_GRACE_S, progress=print) -> dict:
    """Every rule evaluated over the manifest's history and scored against its incidents."""
    t0 = time.monotonic()
    start, end = manifest["start"], manifest["end"]
    pages: list[Page] = []
    for rule in rules:
        every = rule.interval_s or step
        last = start + math.floor((end - start) / every) * every
        pages += pages_of(rule, prometheus.evaluations(rule.expr, start, end, every), every, last)
        progress(f"backtest: {rule.alert}: {sum(p.alertname == rule.alert for p in pages)} pages")
    windows = windows_of(manifest)
    # Only the incidents' alerts that this file has a rule for are expected of it.
    names = {r.alert for r in rules}
    windows = [Window(w.name, w.start, w.end, tuple(e for e in w.expect if e.alertname in names)) for w in windows]
    result = score(pages, windows, (start, end), grace)
    result.update({"start": start, "end": end, "days": manifest.get("days"), "step_s": step, "grace_s": grace,
                   "rules": [asdict(r) for r in rules], "seconds": round(time.monotonic() - t0, 1),
                   "incidents": [asdict(w) | {"expect": [str(e) for e in w.expect]} for w in windows_of(manifest)],
                   "pages": [asdict(p) for p in pages if p.alertname not in NOT_PAGES]})
    return result


# ---------------------------------------------------------------- output
def _dur(s) -> str:
    if s is None:
        return "-"
    sign, s = ("-" if s < 0 else ""), abs(s)
    if s < 120:
        return f"{sign}{s:.0f}s"
    if s < 7200:
        return f"{sign}{s / 60:.0f}m"
    if s < 2 * 86400:
        return f"{sign}{s / 3600:.1f}h"
    return f"{sign}{s / 86400:.1f}d"


TABLE_HEAD = ("alert", "pages", "/week", "caught", "precision", "false", "detect med/max", "resolve med/max",
              "longest", "verdict")


def table(result: dict) -> list[str]:
    """The per-alert table (text), as printed and as put in the docs."""
    head = TABLE_HEAD
    lines = [[a["alert"], str(a["pages"]), f"{a['pages_per_week']:g}", f"{a['caught']}/{a['should_catch']}",
              "-" if a["precision"] is None else f"{a['precision']:.2f}", str(a["false_pages"]),
              f"{_dur(a['detect_s_median'])}/{_dur(a['detect_s_max'])}",
              f"{_dur(a['resolve_s_median'])}/{_dur(a['resolve_s_max'])}", _dur(a["longest_page_s"]), a["verdict"]]
             for a in result["alerts"]]
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *lines]]


def print_report(result: dict) -> None:
    print("\n".join(table(result)))
    print(f"\nincidents: recall {result['recall']}, time to detect median {_dur(result['detect_s_median'])} "
          f"max {_dur(result['detect_s_max'])}; false pages {len(result['false_pages'])}; "
          f"{result.get('days', '?')} days at a {result.get('step_s', 0):g} s step in {result.get('seconds', 0)} s")
    for r in result["rows"]:
        if r["verdict"] != "paged":
            print(f"  {r['incident']}: {r['alert']} {r['verdict']}")
    for page in result["false_pages"][:20]:
        print(f"  false page: {page}")


def plot(result: dict, out: Path, unit: float = 86400) -> None:
    """Incidents (shaded) and pages (bars: blue matching an incident it should catch, red
    false, grey other) on one time axis, in days (or minutes: unit=60)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0, t1 = result["start"], result["end"]
    pages = [Page(**p) for p in result["pages"]]
    keys = sorted({(p.alertname, p.labels.get("service", "")) for p in pages}
                  | {(r["alertname"], "") for r in result["rows"] if not r["pages"]})
    fig, ax = plt.subplots(figsize=(13, 1.8 + 0.35 * max(len(keys), 1)))
    for w in result["incidents"]:
        ax.axvspan((w["start"] - t0) / unit, (w["end"] - t0) / unit, color="tab:orange", alpha=0.25, lw=0)
        ax.text((w["start"] - t0) / unit, len(keys) - 0.3, w["name"], fontsize=7, rotation=25)
    windows = [Window(w["name"], w["start"], w["end"], tuple()) for w in result["incidents"]]
    grace = result.get("grace_s", 0)
    matched = {(r["incident"], r["alertname"]) for r in result["rows"] if r["pages"]}
    for i, key in enumerate(keys):
        for p in (p for p in pages if (p.alertname, p.labels.get("service", "")) == key):
            within = [w for w in windows if w.start <= p.start <= w.end + grace]
            color = "tab:red" if not within else "tab:blue" if any((w.name, p.alertname) in matched for w in within) \
                else "tab:gray"
            ax.plot([(p.start - t0) / unit, ((p.end or t1) - t0) / unit], [i, i], color=color, lw=7,
                    solid_capstyle="butt")
            ax.plot([(p.start - t0) / unit], [i], marker="|", color=color, ms=12)
    ax.set_yticks(range(len(keys)), [f"{n}{{{s}}}" if s else n for n, s in keys], fontsize=8)
    ax.set_ylim(-1, len(keys) + 0.6)
    ax.set_xlim(0, (t1 - t0) / unit)
    ax.set_xlabel(f"{'days' if unit == 86400 else 'minutes'} from {time.strftime('%Y-%m-%d %H:%M', time.gmtime(t0))} "
                  "(shaded: incidents; bars: pages, "
                  "blue for an incident the alert should catch, red outside every incident, grey other)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def provenance() -> dict:
    """When, on what machine and with which Prometheus a backtest ran (for its table)."""
    import os
    import platform
    import subprocess

    from scripts.validate import image

    ref = image("PROMETHEUS_IMAGE")
    got = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError):
        mem = 0
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB",
            "prometheus_image": ref + (f" ({got.stdout.strip()[:19]})" if got.returncode == 0 else "")}


DOCS = REPO / "docs" / "backtest.md"


def write_docs(result: dict, json_path: Path, out: Path = DOCS) -> None:
    """docs/backtest.md from a backtest's JSON: the table, where and when it ran, the
    incidents, and why the alerts without one have none (drills/catalogue.py)."""
    from drills.catalogue import NO_PLANTED_INCIDENT

    import shutil

    png = json_path.with_suffix(".png")
    image = out.parent / "images" / "backtest.png"
    if png.exists():
        image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, image)
    p = result.get("provenance", {})
    quiet = sorted({r["alert"] for r in result["rules"]} - {a["alert"] for a in result["alerts"]})
    lines = [
        "# The shipped alert rules, backtested over a month",
        "",
        f"<!-- Generated by `make backtest-docs` from {json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path}: "
        "do not edit by hand. -->",
        "",
        "`make backtest RULES=path [DAYS=30]` evaluates every alerting rule of a file over `make history`'s month "
        "as Prometheus' rule manager would (`for:`, `keep_firing_for:`) and matches each page with the planted "
        "incidents of `drills/catalogue.py`. Precision: the share of an alert's pages that start within an incident "
        "it should catch (or its grace after); false: pages outside every incident.",
        "",
        f"Run {p.get('date', '?')} on {p.get('machine', '?')}, Prometheus {p.get('prometheus_image', '?')}: "
        f"{result.get('days') or 0:g} days at a {result.get('step_s', 0):g} s evaluation step, grace "
        f"{result.get('grace_s', 0):g} s, backtested in {result.get('seconds', '?')} s"
        + (f" (the history loaded in {result['history_s']} s)" if result.get("history_s") else "") + "."
        + (f" {p['note']}" if p.get("note") else ""),
        "",
        "| " + " | ".join(TABLE_HEAD) + " |",
        "|" + "---|" * len(TABLE_HEAD),
    ]
    for a in result["alerts"]:
        lines.append("| " + " | ".join([
            a["alert"], str(a["pages"]), f"{a['pages_per_week']:g}", f"{a['caught']}/{a['should_catch']}",
            "-" if a["precision"] is None else f"{a['precision']:.2f}", str(a["false_pages"]),
            f"{_dur(a['detect_s_median'])}/{_dur(a['detect_s_max'])}",
            f"{_dur(a['resolve_s_median'])}/{_dur(a['resolve_s_max'])}", _dur(a["longest_page_s"]), a["verdict"]]) + " |")
    lines += ["", "![incidents and pages over the month](images/backtest.png)", "", "## The planted incidents", ""]
    for w in result["incidents"]:
        lines.append(f"- **{w['name']}** ({_dur(w['end'] - w['start'])}): pages {', '.join(f'`{e}`' for e in w['expect']) or 'nothing (no alert can see it)'}")
    if quiet:
        lines += ["", "## Alerts no planted incident pages, and why", ""]
        reasons: dict[str, list] = {}
        for name in quiet:
            reasons.setdefault(NO_PLANTED_INCIDENT.get(name, "no reason given in drills/catalogue.py"), []).append(name)
        lines += [f"- {', '.join(f'`{n}`' for n in names)}: {why}" for why, names in reasons.items()]
    if result["false_pages"]:
        lines += ["", "## Pages outside every incident", ""] + [f"- {x}" for x in result["false_pages"]]
    out.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- the history underneath
def history_in(prometheus: Prometheus, manifest: dict) -> bool:
    """Whether Prometheus holds the manifest's month (its first and last days)."""
    for at in (manifest["start"] + 3600, manifest["end"] - 60):
        body = prometheus.get("/api/v1/query", query='count(up{job="shop"})', time=at)
        if not body["data"]["result"]:
            return False
    return True


def prepare(compose: list[str], days: float) -> tuple[dict, Prometheus]:
    """The stack's Prometheus with `days` of history: the one loaded before when it is still
    there, else a new one loaded now (`make history DAYS=...`)."""
    from drills import history
    from drills.target import Target

    history.Loader(compose).up()
    prometheus = Prometheus.of(Target(compose))
    manifest = json.loads(history.MANIFEST.read_text()) if history.MANIFEST.exists() else None
    if manifest is None or manifest.get("days") != days or not history_in(prometheus, manifest):
        print(f"backtest: loading {days:g} days of history first (make history DAYS={days:g})", flush=True)
        manifest = history.load(compose, days, seed=1, ending="calm")
        prometheus = Prometheus.of(Target(compose))  # restarted: maybe another port
    return manifest, prometheus


def default_step(compose: list[str]) -> float:
    from drills.target import Target

    return seconds(Target(compose).evaluation_interval() or "15s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rules", nargs="*", type=Path, help="rule files (their alerting rules are backtested)")
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--step", type=float, help="seconds between evaluations (default: the stack's evaluation_interval)")
    ap.add_argument("--grace", type=float, default=HISTORY_GRACE_S,
                    help="seconds after an incident in which a page still counts as its")
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    ap.add_argument("--docs", type=Path, metavar="JSON", help="write docs/backtest.md from a backtest's JSON, no backtest")
    argv = sys.argv[1:] if argv is None else argv
    # After `--`: the compose command (default: docker compose).
    compose = argv[argv.index("--") + 1:] if "--" in argv else []
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if a.docs:
        if not a.docs.exists():
            raise SystemExit(f"no {a.docs}: run the backtest first (the history tier writes build/backtest-shipped.json)")
        write_docs(json.loads(a.docs.read_text()), a.docs.resolve())
        print(f"written: {DOCS.relative_to(REPO)}")
        return 0
    if not a.rules:
        ap.error("name the rule files to backtest (RULES=...)")
    rules = alerting_rules(a.rules)
    if not rules:
        raise SystemExit(f"no alerting rule in {', '.join(map(str, a.rules))}")
    compose = compose or ["docker", "compose"]
    manifest, prometheus = prepare(compose, a.days)
    step = a.step or default_step(compose)
    result = backtest(rules, manifest, prometheus, step, a.grace)
    result.update({"rule_files": [str(p) for p in a.rules], "provenance": provenance(),
                   "history_s": manifest.get("timings", {}).get("total_s")})
    print_report(result)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, a.out.with_suffix(".png"))
    print(f"written: {a.out}, {a.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
