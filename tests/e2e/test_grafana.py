"""Grafana: healthy, every provisioned datasource passes its health check, the committed
dashboards are provisioned, and every panel query returns data from the running stack."""
from __future__ import annotations

import pytest
import requests

from grafana.panel_queries import all_queries, load_dashboards, substitute
from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.signal("dashboards"),
              pytest.mark.services("grafana", "prometheus", "loki", "jaeger", "alertmanager")]
DATASOURCE_UIDS = {"prometheus", "loki", "jaeger", "alertmanager"}  # docs/conventions.md
# Datasource plugins without a backend have no /health endpoint: Grafana's UI tests them
# through its proxy (the Alertmanager plugin asks for /api/v2/status).
FRONTEND_ONLY = {"alertmanager": "/api/v2/status"}


def grafana(stack: st.Stack, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, clients.url("grafana", path), auth=stack.grafana_auth, timeout=30, **kwargs)


def test_grafana_is_healthy_and_refuses_anonymous(warm: st.Stack) -> None:
    health = poll_until(lambda: clients.get_json("grafana", "/api/health"), 60, "Grafana /api/health answers")
    assert health.get("database") == "ok", health
    # No anonymous access and no admin/admin: only the generated password gets in.
    assert requests.get(clients.url("grafana", "/api/datasources"), timeout=10).status_code == 401
    assert requests.get(clients.url("grafana", "/api/datasources"), auth=("admin", "admin"), timeout=10).status_code == 401
    assert grafana(warm, "GET", "/api/datasources").status_code == 200


def test_every_datasource_health_check_passes(warm: st.Stack) -> None:
    datasources = grafana(warm, "GET", "/api/datasources").json()
    uids = {d["uid"] for d in datasources}
    assert DATASOURCE_UIDS <= uids, f"provisioned datasource uids: {sorted(uids)}"

    types = {d["uid"]: d["type"] for d in datasources}

    def healthy(uid: str) -> dict:
        if types[uid] in FRONTEND_ONLY:  # test it as its "Save & test" button does
            r = grafana(warm, "GET", f"/api/datasources/proxy/uid/{uid}{FRONTEND_ONLY[types[uid]]}")
            assert r.status_code == 200, f"{uid}: {r.status_code} {r.text[:300]}"
            return r.json()
        r = grafana(warm, "GET", f"/api/datasources/uid/{uid}/health")
        body = r.json()
        assert r.status_code == 200 and body.get("status") == "OK", f"{uid}: {r.status_code} {body}"
        return body

    for uid in sorted(uids):
        poll_until(lambda uid=uid: healthy(uid), 90, f"Grafana's health check of datasource {uid} passes",
                      interval=5)


def test_committed_dashboards_are_provisioned(warm: st.Stack) -> None:
    committed = {b["uid"]: b.get("title") for b in load_dashboards().values()}
    assert committed, "no dashboards in grafana/dashboards/"

    def provisioned() -> dict:
        found = {d["uid"]: d for d in grafana(warm, "GET", "/api/search", params={"type": "dash-db"}).json()}
        assert committed.keys() <= found.keys(), f"provisioned {sorted(found)}, committed {sorted(committed)}"
        return found

    poll_until(provisioned, 60, "every committed dashboard is provisioned in Grafana", interval=3)


def _has_data(result: dict) -> bool:
    return any(values for frame in result.get("frames") or []
               for values in (frame.get("data") or {}).get("values") or [] if values)


def test_every_dashboard_query_returns_data(warm: st.Stack) -> None:
    queries = all_queries()
    assert queries, "no panel queries found in the committed dashboards"

    def run(q) -> tuple[bool, str]:
        target = dict(q.raw, refId="A", datasource={"uid": q.datasource_uid, "type": q.datasource_type})
        if "expr" in target:
            target["expr"] = substitute(q.expr)
        if q.datasource_type == "jaeger":  # the Jaeger panel searches one concrete service
            target = {k: substitute(v, {"service": "shop"}) if isinstance(v, str) else v
                      for k, v in target.items()}
        r = grafana(warm, "POST", "/api/ds/query",
                    json={"queries": [target], "from": "now-15m", "to": "now"})
        result = (r.json().get("results") or {}).get("A", {})
        if r.status_code != 200 or result.get("error"):
            return False, f"{r.status_code} {result.get('error') or r.text[:300]}"
        return _has_data(result), "no data"

    def all_have_data() -> bool:
        empty = []
        for q in queries:
            ok, why = run(q)
            # ALERTS-only panels have data only while an alert other than the Watchdog fires.
            if not ok and not (q.needs_firing_alert and why == "no data"):
                empty.append(f"{q.dashboard}/{q.panel} [{q.datasource_uid}] {q.expr[:120]}: {why}")
        assert not empty, f"{len(empty)} of {len(queries)} panel queries without data:\n" + "\n".join(empty)
        return True

    poll_until(all_have_data, 240, "every dashboard panel query returns data", interval=15)
