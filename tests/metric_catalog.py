"""The shared metric catalogue: every metric name a rule or a dashboard may use.

    known_metric_names() -> set[str]     demo metrics (from the demo package's own registries),
                                         recording-rule names (prometheus/rules/), and the
                                         components' self-metrics (metric_catalog_data/*.txt)
    metric_names_in(expr) -> set[str]    metric names a PromQL expression selects, found by the
                                         real Prometheus parser (GET /api/v1/parse_query on a
                                         Prometheus container from PROMETHEUS_IMAGE); raises
                                         ValueError when the expression does not parse.

The data files hold names as Prometheus stores them (after the scrape, e.g. counters with
`_total`). `<component>.txt` files were captured from running components (see
metric_catalog_data/README.md and capture.py); `<component>.documented.txt` files list names
that could not be observed here, each with the upstream source that defines it.
"""
from __future__ import annotations

import atexit
import functools
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.tooling import REPO, require_image

DATA = Path(__file__).resolve().parent / "metric_catalog_data"
RULES = REPO / "prometheus" / "rules"
DEMO_SRC = REPO / "demo_app" / "src"

# Series Prometheus itself writes for every target and every alerting rule.
PROMETHEUS_SYNTHETIC = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
    "ALERTS", "ALERTS_FOR_STATE",
}

# prometheus-client family type -> the sample names Prometheus stores for it. `_created`
# samples are left out: Prometheus 3 does not store them as series by default.
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}


@functools.cache
def demo_metric_names() -> frozenset[str]:
    """Names from the demo's own prometheus-client registries, one per role."""
    if str(DEMO_SRC) not in sys.path:
        sys.path.insert(0, str(DEMO_SRC))
    from demo_app.settings import ROLES
    from demo_app.metrics import ServiceMetrics

    names = set()
    for role in ROLES:
        for family in ServiceMetrics(role, role).registry.collect():
            names.update(family.name + s for s in _SUFFIXES[family.type])
    return frozenset(names)


@functools.cache
def recording_rule_names() -> frozenset[str]:
    names = set()
    for f in sorted(RULES.glob("*.yml")):
        for group in (yaml.safe_load(f.read_text()) or {}).get("groups", []):
            names.update(r["record"] for r in group.get("rules", []) if "record" in r)
    return frozenset(names)


def _read_names(path: Path) -> set[str]:
    out = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.add(line.split()[0])
    return out


@functools.cache
def component_metric_names(include_documented: bool = True) -> frozenset[str]:
    names = set(PROMETHEUS_SYNTHETIC)
    for f in sorted(DATA.glob("*.txt")):
        if f.name.endswith(".documented.txt") and not include_documented:
            continue
        names |= _read_names(f)
    return frozenset(names)


@functools.cache
def metric_owners() -> dict[str, frozenset[str]]:
    """Component self-metric name -> the components exporting it (data file stems, e.g.
    `loki` for loki.documented.txt), so a test can tell a metric of a stopped component."""
    owners: dict[str, set[str]] = {}
    for f in sorted(DATA.glob("*.txt")):
        component = f.name.removesuffix(".txt").removesuffix(".documented")
        for name in _read_names(f):
            owners.setdefault(name, set()).add(component)
    return {name: frozenset(c) for name, c in owners.items()}


def known_metric_names() -> set[str]:
    return set(demo_metric_names() | recording_rule_names() | component_metric_names())


# ---------------------------------------------------------------- the real PromQL parser
class _Parser:
    """One Prometheus container per test session, answering /api/v1/parse_query."""

    def __init__(self) -> None:
        ref = require_image("PROMETHEUS_IMAGE")
        self.container = subprocess.run(
            ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::9090", ref,
             "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
            capture_output=True, text=True, check=True).stdout.strip()
        atexit.register(self.close)
        port = subprocess.run(["docker", "port", self.container, "9090/tcp"],
                              capture_output=True, text=True, check=True).stdout
        self.base = "http://" + port.splitlines()[0].strip()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", self.container], capture_output=True,
                                      text=True).stderr[-2000:]
                raise RuntimeError(f"Prometheus parser container never became ready:\n{logs}")
            time.sleep(0.3)

    def parse(self, expr: str) -> dict:
        url = self.base + "/api/v1/parse_query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            raise ValueError(f"PromQL does not parse: {body.get('error', body)}: {expr!r}")
        return body["data"]

    def close(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.container], capture_output=True)


@functools.cache
def _parser() -> _Parser:
    return _Parser()


def _selectors(node) -> list[dict]:
    if isinstance(node, dict):
        # The JSON AST flattens a range selector into one "matrixSelector" node with the name.
        found = [node] if node.get("type") in ("vectorSelector", "matrixSelector") else []
        for v in node.values():
            found += _selectors(v)
        return found
    if isinstance(node, list):
        return [s for v in node for s in _selectors(v)]
    return []


def _selector_name(sel: dict) -> str | None:
    if sel.get("name"):
        return sel["name"]
    for m in sel.get("matchers") or []:
        if m.get("name") == "__name__" and m.get("type") == "=":
            return m.get("value")
    return None  # a regex on __name__ names no single metric


@functools.lru_cache(maxsize=4096)
def _names(expr: str) -> frozenset[str]:
    ast = _parser().parse(expr)
    return frozenset(n for n in map(_selector_name, _selectors(ast)) if n)


def metric_names_in(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (raises ValueError if it is invalid)."""
    return set(_names(expr))
