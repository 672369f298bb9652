"""List every query the committed dashboards run, for tests (standard library only).

    from grafana.panel_queries import all_queries, substitute
    for q in all_queries():              # from grafana/dashboards/*.json
        expr = substitute(q.expr)        # Grafana variables -> concrete values
        ... run expr against q.datasource_uid ...

Static tests use it to check datasource uids and PromQL; the e2e tier uses it to assert that
each query returns data from the running stack. Run as a script to print the list.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"

# What Grafana would put in for its built-in interval variables when querying directly.
BUILTINS = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h", "__auto": "1m",
            "__interval_ms": "30000", "__range_s": "3600"}
# Dashboard variables: regex-friendly stand-ins (every use is a `=~` matcher) unless the
# caller needs concrete values (the Jaeger panel repeats per service and needs one name).
DEFAULT_VALUES = {"service": ".+", "route": ".+", "container": ".+"}
# Series that exist only while some alert is pending or firing.
ALERT_SERIES = ("ALERTS", "ALERTS_FOR_STATE")
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str          # dashboard uid
    panel: str              # panel title
    panel_type: str
    datasource_uid: str
    datasource_type: str
    ref_id: str
    expr: str               # PromQL/LogQL; for Jaeger the searched service
    raw: dict[str, Any] = field(compare=False, hash=False, repr=False)

    @property
    def instant(self) -> bool:
        return bool(self.raw.get("instant")) and not self.raw.get("range")

    @property
    def needs_firing_alert(self) -> bool:
        """True when the expression reads ALERTS/ALERTS_FOR_STATE with nothing to fall back
        on: it returns data only while some alert is pending or firing (in this stack the
        always-firing Watchdog of prometheus/rules/stack-alerts.yml sees to that)."""
        uses = any(re.search(rf"\b{name}\b", self.expr) for name in ALERT_SERIES)
        return uses and "vector(" not in self.expr


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace $var, ${var}, ${var:fmt} and [[var]] as Grafana would before querying."""
    table = {**BUILTINS, **DEFAULT_VALUES, **(values or {})}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in table:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return table[name]

    return _VAR.sub(repl, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels") or [])  # collapsed rows nest their panels


def dashboard_queries(board: dict[str, Any]) -> list[PanelQuery]:
    out = []
    for p in _panels(board.get("panels") or []):
        panel_ds = p.get("datasource") or {}
        for t in p.get("targets") or []:
            ds = t.get("datasource") or panel_ds
            if not ds.get("uid"):
                raise ValueError(f"{board.get('uid')}/{p.get('title')}: target without datasource uid")
            expr = t.get("expr", t.get("query", t.get("service", "")))
            out.append(PanelQuery(board["uid"], p.get("title", ""), p.get("type", ""), ds["uid"],
                                  ds.get("type", ""), t.get("refId", ""), expr, t))
    return out


def variable_queries(board: dict[str, Any]) -> list[PanelQuery]:
    """Template variables that query a datasource (label_values(...) etc.)."""
    out = []
    for v in (board.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        expr = q.get("query", "") if isinstance(q, dict) else (q or "")
        ds = v.get("datasource") or {}
        out.append(PanelQuery(board["uid"], f"${v['name']}", "variable", ds.get("uid", ""),
                              ds.get("type", ""), v["name"], expr, v))
    return out


def load_dashboards(directory: Path = DASHBOARDS) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def all_queries(directory: Path = DASHBOARDS) -> list[PanelQuery]:
    return [q for b in load_dashboards(directory).values() for q in dashboard_queries(b)]


if __name__ == "__main__":
    for q in all_queries(Path(sys.argv[1]) if len(sys.argv) > 1 else DASHBOARDS):
        print(f"{q.dashboard:16} {q.datasource_uid:11} {q.panel[:40]:40} {q.expr}")
