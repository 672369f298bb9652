"""Small helpers shared by the dashboards: datasource refs, query builders, panel defaults.

The datasource uids are the ones grafana/provisioning/datasources/datasources.yml
provisions (docs/conventions.md); a config test checks every uid a dashboard names exists.
"""
from __future__ import annotations

import typing

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import loki as lokiq
from grafana_foundation_sdk.builders import prometheus as promq
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, ReduceDataOptions
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

PROMETHEUS = cm.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = cm.DataSourceRef(type_val="loki", uid="loki")
JAEGER = cm.DataSourceRef(type_val="jaeger", uid="jaeger")
# The alertGroups panel names its Alertmanager by datasource *name*, not uid.
ALERTMANAGER_NAME = "Alertmanager"

# Scrape jobs are named after the compose services (docs/conventions.md).
STACK_JOBS = ["prometheus", "alertmanager", "grafana", "loki", "jaeger", "otel-collector"]
DEMO_JOBS = ["shop", "inventory", "loadgen", "alert-sink"]
# Both the collector and Jaeger v2 (a collector distribution) expose otelcol_* metrics.
OTELCOL_JOBS = 'job=~"otel-collector|jaeger"'


def prom(expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False,
         exemplar: bool = False, table: bool = False) -> promq.Dataquery:
    q = promq.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(PROMETHEUS)
    q = q.instant() if instant else q.range()
    if exemplar:
        q = q.exemplar(True)
    if table:
        q = q.format(pm.PromQueryFormat.TABLE)
    return q


def loki(expr: str, legend: str = "", ref: str = "A", *, max_lines: int | None = None) -> lokiq.Dataquery:
    q = lokiq.Dataquery().expr(expr).ref_id(ref).datasource(LOKI)
    if legend:
        q = q.legend_format(legend)
    if max_lines is not None:
        q = q.max_lines(max_lines)
    return q


class JaegerQuery(cogvariants.Dataquery):
    """A Jaeger datasource query: the foundation SDK ships no Jaeger model, so this is the
    one hand-written query type (fields as Grafana's Jaeger query editor saves them)."""

    def __init__(self, service: str, ref: str, limit: int, min_duration: str | None,
                 operation: str | None) -> None:
        self.service, self.ref, self.limit = service, ref, limit
        self.min_duration, self.operation = min_duration, operation

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "datasource": JAEGER.to_json(), "refId": self.ref, "queryType": "search",
            "service": self.service, "limit": self.limit,
        }
        if self.operation:
            out["operation"] = self.operation
        if self.min_duration:
            out["minDuration"] = self.min_duration
        return out


class Jaeger(cogbuilder.Builder[JaegerQuery]):
    def __init__(self, service: str, ref: str = "A", limit: int = 20,
                 min_duration: str | None = None, operation: str | None = None) -> None:
        self._q = JaegerQuery(service, ref, limit, min_duration, operation)

    def build(self) -> JaegerQuery:
        return self._q


class Layout:
    """Gives panels stable ids and a grid size; the SDK's Dashboard builder places them."""

    def __init__(self, board: dash.Dashboard) -> None:
        self.board = board
        self.next_id = 1

    def row(self, title: str) -> None:
        self.board.with_row(dash.Row(title).id(self._id()))

    def add(self, panel: typing.Any, w: int, h: int) -> None:
        self.board.with_panel(panel.id(self._id()).span(w).height(h))

    def _id(self) -> int:
        i, self.next_id = self.next_id, self.next_id + 1
        return i


def ts(title: str, description: str, unit: str, *targets: cogbuilder.Builder) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).description(description).unit(unit)
         .datasource(PROMETHEUS).fill_opacity(10).line_width(1).show_points(cm.VisibilityMode.NEVER))
    for t in targets:
        p = p.with_target(t)
    return p


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (dash.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


def up_mappings() -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={
        "0": dm.ValueMappingResult(text="DOWN", color="red", index=0),
        "1": dm.ValueMappingResult(text="UP", color="green", index=1),
    })]


def last_value() -> ReduceDataOptions:
    """Stat panels show the latest value of each series (not a sum over the range)."""
    return ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def threshold_lines() -> GraphThresholdsStyleConfig:
    return GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)


def latency_quantiles(buckets: str, by: str) -> list[promq.Dataquery]:
    """p50, p95 and p99 per `by` from a histogram's bucket rates (refs A, B, C); the p99
    line carries the exemplars (a dot opens its trace)."""
    return [prom(f"histogram_quantile({q}, sum by (le, {by}) ({buckets}))", f"p{int(q * 100)} {{{{{by}}}}}", ref,
                 exemplar=ref == "C")
            for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]


def multi_variable(name: str, label: str, query: str, regex: str | None = None) -> dash.QueryVariable:
    """A Prometheus label variable, several values at once, All by default (refreshed with
    the time range, sorted)."""
    var = dash.QueryVariable(name).label(label).datasource(PROMETHEUS).query({"query": query, "refId": name})
    if regex:
        var = var.regex(regex)
    return (var.refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True)
            .current(dm.VariableOption(text="All", value="$__all", selected=True)))


def new_dashboard(title: str, uid: str, description: str, tags: list[str],
                  since: str) -> dash.Dashboard:
    """The settings every stack dashboard shares: generated (read-only), 30 s refresh,
    browser time zone, shared crosshair."""
    return (dash.Dashboard(title).uid(uid).description(description)
            .tags([*tags, "generated"]).refresh("30s").time(since, "now")
            .timezone("browser").tooltip(dm.DashboardCursorSync.CROSSHAIR).readonly())


def stack_dashboards_link() -> dash.DashboardLink:
    """A dropdown of the other generated dashboards, keeping the time range."""
    return (dash.DashboardLink("Stack dashboards").type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["generated"]).as_dropdown(True).keep_time(True))

