"""Metrics: Prometheus scrapes every running service, holds the demo's RED metrics with
trace_id exemplars, and receives the collector's span metrics over OTLP."""
from __future__ import annotations

import re

import pytest

from scripts import compose_info
from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until
from tests.tooling import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.signal("metrics")]


@pytest.mark.services("prometheus")
def test_every_scrape_target_of_a_running_service_is_up(warm: st.Stack) -> None:
    running = warm.running()

    def all_up() -> list[dict]:
        targets = clients.get_json("prometheus", "/api/v1/targets", params={"state": "active"})["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        unknown = jobs - set(warm.plan.image_vars)
        assert not unknown, f"scrape jobs not named after a compose service: {sorted(unknown)}"
        unscraped = running - jobs
        assert not unscraped, f"running services without a scrape job: {sorted(unscraped)}"
        down = [(t["labels"]["job"], t["scrapeUrl"], t["health"], t.get("lastError"))
                for t in targets if t["labels"]["job"] in running and t["health"] != "up"]
        assert not down, f"targets not up (job, url, health, error): {down}"
        return targets

    targets = poll_until(all_up, 120, "every scrape target of a running service is up", interval=3)
    st.MEASUREMENTS["scrape_jobs_up"] = sorted({t["labels"]["job"] for t in targets if t["health"] == "up"})


@pytest.mark.services("prometheus", "shop", "inventory")
def test_demo_red_metrics_are_queryable(warm: st.Stack) -> None:
    def by_service(expr: str) -> dict[str, float]:
        return {r["metric"].get("service", ""): float(r["value"][1]) for r in clients.prom_query(expr)}

    def red() -> bool:
        rate = by_service('sum by (service) (rate(demo_http_requests_total{service=~"shop|inventory"}[1m]))')
        assert rate.get("shop", 0) > 0 and rate.get("inventory", 0) > 0, f"request rate by service: {rate}"
        p95 = by_service('histogram_quantile(0.95, sum by (service, le) '
                         '(rate(demo_http_request_duration_seconds_bucket{service=~"shop|inventory"}[1m])))')
        assert {"shop", "inventory"} <= p95.keys(), f"p95 latency by service: {p95}"
        in_flight = by_service('demo_http_requests_in_flight{service=~"shop|inventory"}')
        assert {"shop", "inventory"} <= in_flight.keys(), f"in-flight gauge by service: {in_flight}"
        return True

    poll_until(red, 120, "demo RED metrics (rate, p95, in-flight) exist for shop and inventory", interval=3)
    # `route` is the templated route, never a raw path with an id in it.
    routes = {r["metric"].get("route") for r in clients.prom_query("count by (route) (demo_http_requests_total)")}
    raw = sorted(r for r in routes if r and re.search(r"/\d+(/|$)", r))
    assert not raw, f"raw paths in the route label (cardinality leak): {raw}"
    assert "/api/products/{product_id}" in routes, f"templated shop route missing; routes: {sorted(map(str, routes))}"


@pytest.mark.services("prometheus", "loadgen", "shop")
def test_loadgen_traffic_arrives(warm: st.Stack) -> None:
    poll_until(lambda: clients.prom_query('sum(demo_loadgen_requests_total{outcome="ok"}) > 0'), 120,
                  "the load generator has completed requests (demo_loadgen_requests_total{outcome=ok})",
                  interval=3)


@pytest.mark.services("prometheus", "shop")
def test_exemplar_with_trace_id_is_queryable(warm: st.Stack) -> None:
    series = 'demo_http_request_duration_seconds_bucket{service="shop"}'
    poll_until(lambda: clients.exemplar_trace_ids(series), 120,
                  f"an exemplar of {series} carries a trace_id (32 hex)", interval=3)


@pytest.mark.services("prometheus", "otel-collector", "shop", "inventory")
def test_span_metrics_from_the_collector_arrive(warm: st.Stack) -> None:
    def span_metrics() -> bool:
        calls = {r["metric"].get("service_name"): float(r["value"][1]) for r in clients.prom_query(
            'sum by (service_name) (traces_span_metrics_calls_total{service_name=~"shop|inventory"})')}
        assert calls.get("shop", 0) > 0 and calls.get("inventory", 0) > 0, f"span calls by service_name: {calls}"
        # Jaeger's Monitor tab reads server spans from these two names exactly.
        kinds = {r["metric"].get("span_kind") for r in clients.prom_query(
            'count by (span_kind) (traces_span_metrics_duration_milliseconds_bucket{service_name="shop"})')}
        assert "SPAN_KIND_SERVER" in kinds, f"span kinds with a duration histogram for shop: {kinds}"
        return True

    poll_until(span_metrics, 150, "span metrics (traces_span_metrics_*) for shop and inventory "
                  "reach Prometheus through the collector's OTLP export", interval=3)


@pytest.mark.services("prometheus", "shop", "inventory", "otel-collector")
@pytest.mark.signal("dashboards")
def test_every_prometheus_panel_query_returns_data(warm: st.Stack) -> None:
    """The dashboards' PromQL, run on Prometheus directly: proven even where Grafana's
    image is missing. A query may stay empty only when a metric it needs comes solely from
    a component that is not running (Loki's where its image is missing; node_exporter's and
    Telegraf's, whose parts are off in this stack: tests/own runs them), or when it needs a
    firing alert."""
    from grafana.panel_queries import all_queries, substitute
    from tests import metric_catalog as catalog

    queries = [q for q in all_queries() if q.datasource_type == "prometheus"]
    assert queries, "no Prometheus panel queries in the committed dashboards"
    owners = catalog.metric_owners()
    # Components with metrics of their own that do not run here: an image is missing, or
    # their optional part (a compose profile: host, containers) is off in this stack.
    services = set(compose_info.load_compose_yaml(REPO / "docker-compose.yml")["services"])
    stopped = {c for found in owners.values() for c in found if c in services} - warm.running()

    def excused(q) -> str | None:
        if q.needs_firing_alert:
            return "needs a firing alert"
        absent = sorted(n for n in catalog.metric_names_in(substitute(q.expr))
                        if owners.get(n) and owners[n] <= stopped)
        return f"{', '.join(absent)} only from {'/'.join(sorted(stopped))}" if absent else None

    reasons = {q: excused(q) for q in queries}

    def all_have_data() -> bool:
        empty = [q for q in queries if reasons[q] is None and not clients.prom_query(substitute(q.expr))]
        assert not empty, f"{len(empty)} of {len(queries)} panel queries without data:\n" + "\n".join(
            f"{q.dashboard}/{q.panel}: {q.expr[:160]}" for q in empty)
        return True

    poll_until(all_have_data, 240, "every Prometheus panel query returns data", interval=15)
    st.MEASUREMENTS["prometheus_panel_queries"] = {
        "with_data": sum(r is None for r in reasons.values()),
        "excused": sorted({f"{q.panel}: {r}" for q, r in reasons.items() if r})}


@pytest.mark.services("prometheus", "shop", "inventory", "loadgen", "alert-sink")
def test_demo_targets_scrape_within_their_limits(warm: st.Stack) -> None:
    """The running Prometheus applies the demo jobs' sample and label limits, and each
    demo target's scrape stays far under them."""
    def limits() -> dict[str, float]:
        found = {r["metric"]["job"]: float(r["value"][1]) for r in clients.prom_query(
            'scrape_sample_limit{job=~"shop|inventory|loadgen|alert-sink"}')}
        assert len(found) == 4, f"scrape_sample_limit per demo job: {found}"
        return found

    limit = poll_until(limits, 60, "Prometheus reports the sample limit of every demo job")
    samples = {r["metric"]["job"]: float(r["value"][1])
               for r in clients.prom_query('scrape_samples_scraped{job=~"shop|inventory|loadgen|alert-sink"}')}
    for job, n in limit.items():
        assert n > 0 and 0 < samples.get(job, 0) < n / 2, f"{job}: {samples.get(job)} samples per scrape, limit {n}"
    st.MEASUREMENTS["demo_samples_per_scrape"] = samples
