"""Grafana: dashboards are generated, reference only provisioned datasources, and query
metrics that exist (issue 6)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tests.metric_catalog as metric_catalog
from grafana.panel_queries import (all_queries, dashboard_queries, load_dashboards, substitute,
                                   variable_queries)

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"

EXPECTED = {"prometheus": "prometheus", "loki": "loki", "jaeger": "jaeger",
            "alertmanager": "alertmanager"}  # uid -> plugin type (docs/conventions.md)


def _unescape(value: str) -> str:
    """What Grafana sees after its env-var interpolation of a provisioning file: `$$` -> `$`."""
    return value.replace("$$", "$")


def datasources() -> dict[str, dict]:
    doc = yaml.safe_load(DATASOURCES.read_text())
    return {d["uid"]: d for d in doc["datasources"]}


QUERIES = all_queries()
BOARDS = load_dashboards()
VARIABLES = [v for b in BOARDS.values() for v in variable_queries(b)]


# --- generation ---------------------------------------------------------------------------

def _generate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "generate.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_committed_dashboards_match_their_sources():
    r = _generate(GRAFANA, "--check")
    assert r.returncode == 0, f"dashboards drifted from grafana/dashboards_src:\n{r.stderr}{r.stdout}"


def test_drift_check_catches_a_hand_edit_and_the_folder_works_when_copied(tmp_path):
    """Copy grafana/ elsewhere (the copy-one-folder promise), edit a generated file by hand:
    --check must fail naming it; regenerating there must restore it."""
    copy = tmp_path / "grafana"
    shutil.copytree(GRAFANA, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "dashboards" / "alerts.json"
    target.write_text(target.read_text().replace('"title": "Alerts"', '"title": "Edited"', 1))
    r = _generate(copy, "--check")
    assert r.returncode == 1 and "alerts.json" in r.stderr, r.stderr
    assert _generate(copy).returncode == 0
    assert _generate(copy, "--check").returncode == 0
    assert target.read_text() == (GRAFANA / "dashboards" / "alerts.json").read_text()


def test_the_dashboards_with_unique_uids_and_panel_ids():
    assert {b["uid"] for b in BOARDS.values()} == {"services", "demo-overview", "containers", "host",
                                                     "stack-health", "alerts"}
    for name, board in BOARDS.items():
        assert name == f"{board['uid']}.json"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"


# --- datasource uids ----------------------------------------------------------------------

def test_provisioned_datasources_have_the_conventional_uids():
    ds = datasources()
    assert {uid: d["type"] for uid, d in ds.items()} == EXPECTED
    assert [uid for uid, d in ds.items() if d.get("isDefault")] == ["prometheus"]
    assert ds["alertmanager"]["jsonData"]["implementation"] == "prometheus"


@pytest.mark.parametrize("q", QUERIES + VARIABLES,
                         ids=lambda q: f"{q.dashboard}:{q.panel}:{q.ref_id}")
def test_every_panel_target_and_variable_uses_a_provisioned_datasource(q):
    ds = datasources()
    assert q.datasource_uid in ds, f"unknown datasource uid {q.datasource_uid!r}"
    assert q.datasource_type == ds[q.datasource_uid]["type"]


def test_every_panel_datasource_is_provisioned():
    ds = datasources()
    names = {d["name"]: d for d in ds.values()}
    seen = 0
    for board in BOARDS.values():
        for p in board["panels"]:
            if p.get("datasource"):
                assert p["datasource"]["uid"] in ds, (board["uid"], p["title"])
                seen += 1
            if p["type"] == "alertGroups":  # refers to its Alertmanager by datasource name
                am = p["options"]["alertmanager"]
                assert am in names and names[am]["type"] == "alertmanager", am
                seen += 1
    assert seen > 30


def correlations() -> list[tuple[str, str]]:
    """(where, uid) for every cross-datasource link in the provisioning."""
    out = []
    for uid, d in datasources().items():
        j = d.get("jsonData") or {}
        out += [(f"{uid}.exemplarTraceIdDestinations", e["datasourceUid"])
                for e in j.get("exemplarTraceIdDestinations", [])]
        out += [(f"{uid}.derivedFields", f["datasourceUid"]) for f in j.get("derivedFields", [])]
        for key in ("tracesToLogsV2", "tracesToMetrics"):
            if key in j:
                out.append((f"{uid}.{key}", j[key]["datasourceUid"]))
        if "alertmanagerUid" in j:
            out.append((f"{uid}.alertmanagerUid", j["alertmanagerUid"]))
    return out


def test_every_correlation_points_at_a_provisioned_datasource():
    ds = datasources()
    links = correlations()
    assert {w.split(".")[1] for w, _ in links} >= {
        "exemplarTraceIdDestinations", "derivedFields", "tracesToLogsV2", "tracesToMetrics"}
    for where, uid in links:
        assert uid in ds, f"{where} -> unknown uid {uid!r}"


def test_correlation_wiring():
    ds = datasources()
    ex = ds["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [(e["name"], e["datasourceUid"]) for e in ex] == [("trace_id", "jaeger")]
    # Loki keeps trace_id of OTLP logs as structured metadata: match it by label name.
    [field] = ds["loki"]["jsonData"]["derivedFields"]
    assert (field["matcherType"], field["matcherRegex"], field["datasourceUid"]) == (
        "label", "trace_id", "jaeger")
    assert _unescape(field["url"]) == "${__value.raw}"
    logs = ds["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert logs["customQuery"] and "${__trace.traceId}" in _unescape(logs["query"])
    assert re.search(r"\|\s*trace_id\s*=~?", logs["query"]), "filter on the trace_id metadata"
    metrics = _unescape(str(ds["jaeger"]["jsonData"]["tracesToMetrics"]["queries"]))
    for name in ("traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket"):
        assert name in metrics


def test_provisioning_escapes_grafana_variables_from_env_interpolation():
    """Grafana expands $VAR / ${VAR} in provisioning files: a Grafana-side variable must be
    written with `$$`, or it silently becomes an empty string. The only ${VAR} left are
    environment variables compose sets for Grafana."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    grafana_env = set(compose["services"]["grafana"]["environment"])
    for path in (DATASOURCES, PROVIDERS):
        text = re.sub(r"#.*", "", path.read_text())
        found = re.findall(r"(?<!\$)\$(?!\$)(\{?[\w.]+\}?)", text.replace("$$", ""))
        bad = [v for v in found if v.strip("{}") not in grafana_env]
        assert not bad, f"{path.name}: unescaped {bad} (not set in the grafana service's environment)"


def test_dashboard_provider_loads_the_mounted_folder():
    provider, yours = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file" and provider["folder"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    # The user's place (scripts/places.py), in a folder of its own, mounted below.
    assert yours["folder"] == "Yours" and yours["options"]["path"] == "/etc/grafana/local/dashboards"
    volumes = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["grafana"].get("volumes", [])
    mounts = {}
    for v in volumes:
        src, dst = (v.split(":")[:2] if isinstance(v, str) else (v["source"], v["target"]))
        mounts[dst] = src.rstrip("/")
    assert mounts.get("/etc/grafana/dashboards") == "./grafana/dashboards", mounts
    assert mounts.get("/etc/grafana/provisioning") == "./grafana/provisioning", mounts
    assert mounts.get("/etc/grafana/local") == "./grafana/local", mounts


# --- PromQL -------------------------------------------------------------------------------

def promql_expressions() -> list[tuple[str, str]]:
    """(where, PromQL with Grafana variables substituted) for every Prometheus query the
    dashboards and the datasource correlations run."""
    out = [(f"{q.dashboard}:{q.panel}:{q.ref_id}", substitute(q.expr))
           for q in QUERIES if q.datasource_type == "prometheus"]
    for v in VARIABLES:
        m = re.fullmatch(r"label_values\((.+),\s*\w+\)", v.expr.strip())
        assert m, f"{v.dashboard}:{v.panel}: unexpected variable query {v.expr!r}"
        out.append((f"{v.dashboard}:{v.panel}", substitute(m.group(1))))
    for q in datasources()["jaeger"]["jsonData"]["tracesToMetrics"]["queries"]:
        expr = _unescape(q["query"]).replace("${__span.name}", "GET /api/products")
        out.append((f"jaeger.tracesToMetrics:{q['name']}",
                    expr.replace("$__tags", 'service_name="shop"')))
    return out


PROMQL = promql_expressions()


@pytest.mark.parametrize("where,expr", PROMQL, ids=[w for w, _ in PROMQL])
def test_promql_is_valid_and_names_known_metrics(where, expr):
    catalog = metric_catalog
    names = catalog.metric_names_in(expr)  # the real Prometheus parser: raises when invalid
    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - catalog.known_metric_names()
    assert not unknown, f"{where}: unknown metrics {sorted(unknown)} in {expr!r}"


def test_substitution_leaves_no_grafana_variable():
    for where, expr in PROMQL:
        assert "$" not in expr, (where, expr)


def test_panel_query_list_covers_every_signal():
    """The e2e tier asserts each of these returns data; make sure the list is complete."""
    by_type = {}
    for q in QUERIES:
        by_type.setdefault(q.datasource_type, []).append(q)
    assert set(by_type) == {"prometheus", "loki", "jaeger"}
    total = sum(len(p.get("targets") or []) for b in BOARDS.values() for p in b["panels"])
    assert len(QUERIES) == total
    assert all(q.expr for q in QUERIES)
    assert any(q.needs_firing_alert for q in QUERIES)
    assert sum(len(dashboard_queries(b)) for b in BOARDS.values()) == len(QUERIES)


def test_substitute_handles_grafana_variable_forms_and_refuses_unknown_ones():
    assert substitute('rate(x{a=~"$service"}[$__rate_interval])') == 'rate(x{a=~".+"}[1m])'
    assert substitute("${route:regex} [[service]]", {"service": "shop"}) == ".+ shop"
    with pytest.raises(KeyError, match="nope"):
        substitute("x{a=\"$nope\"}")
