"""drills/catalogue.py is the one catalogue of incidents: every shipped alert is paged by a
planted incident of the history or says why none exists, and every name it uses exists."""
from __future__ import annotations

from drills import backtest, catalogue
from tests.tooling import REPO

SHIPPED = {r.alert for r in backtest.alerting_rules(sorted((REPO / "prometheus" / "rules").glob("*.yml")))}


def test_every_shipped_alert_has_a_planted_incident_or_a_reason() -> None:
    paged = {e.alertname for p in catalogue.PLANTED.values() for e in p.alerts}
    unaccounted = SHIPPED - paged - set(catalogue.NO_PLANTED_INCIDENT)
    assert not unaccounted, (f"{sorted(unaccounted)}: no planted incident pages them; add one to "
                             "drills/catalogue.py PLANTED or say why in NO_PLANTED_INCIDENT")
    both = paged & set(catalogue.NO_PLANTED_INCIDENT)
    assert not both, f"{sorted(both)} are paged by a planted incident and listed as having none"
    stale = set(catalogue.NO_PLANTED_INCIDENT) - SHIPPED
    assert not stale, f"NO_PLANTED_INCIDENT names alerts no rule file has: {sorted(stale)}"
    assert all(catalogue.NO_PLANTED_INCIDENT.values()), "every entry says why"


def test_planted_incidents_name_existing_faults_and_alerts() -> None:
    for p in (*catalogue.PLANTED.values(), catalogue.BURNING_END):
        assert not p.fault or p.fault in catalogue.FAULTS, f"{p.name}: no fault {p.fault!r}"
        assert not (p.fault and p.expect), f"{p.name}: a fault's alerts or its own, not both"
        assert {e.alertname for e in p.alerts} <= SHIPPED, f"{p.name} expects an alert no rule file has"


def test_the_history_plants_the_catalogues_incidents() -> None:
    from drills import history

    gen = history.Generator(30, 1, 1_790_000_000, "burning")
    manifest = gen.manifest()
    assert [i["name"] for i in manifest["incidents"]] == [*catalogue.PLANTED, "burning-end"]
    by_name = {i["name"]: i for i in manifest["incidents"]}
    assert by_name["traffic-dip"]["alerts"] == [{"alertname": e.alertname, "labels": e.labels}
                                                for e in catalogue.FAULTS["loadgen-stopped"].expect]


def test_every_graded_backtest_has_planted_incidents_to_compare_with() -> None:
    """An exercise's backtest stage compares the learner's rule with the shipped one on the
    planted incidents of its part: a check file whose reference or incident labels match no
    planted incident would have nothing to compare (the grader would not grade it)."""
    import yaml

    specs = {f.stem: yaml.safe_load(f.read_text()).get("backtest")
             for f in sorted((REPO / "exercises" / "grader" / "checks").glob("*.yml"))}
    specs = {name: s for name, s in specs.items() if s}
    assert specs, "no exercise has a backtest stage"
    for name, spec in specs.items():
        incident = spec.get("incident", spec.get("labels", {}))
        matching = [p.name for p in catalogue.PLANTED.values() for e in p.alerts
                    if e.alertname in spec["reference"] and all(e.labels.get(k) == v for k, v in incident.items())]
        assert matching, f"{name}: no planted incident expects {spec['reference']} with {incident}"
