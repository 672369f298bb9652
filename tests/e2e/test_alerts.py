"""Alerts: with the drill profile (5 s scrape/evaluation, short Alertmanager grouping), the
shop's fault switch makes the error alert fire in Prometheus, appear in Alertmanager and
reach the alert sink; clearing it delivers the resolved notification. The Watchdog reaches
the sink on its own; the latency alert (it has a `for:`) shows pending -> firing. Alert names:
docs/conventions.md "Alerts" / prometheus/rules/."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import pytest
import requests

from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.signal("alerts")]
ERRORS_ALERT = "DemoErrorBudgetBurnFast"
WATCHDOG = "Watchdog"
# The burn-rate alert has no `for:` and ORs a 1h/5m pair with a 6h/30m pair; on a young
# stack every window spans the whole history, so after the fault the 30m ratio stays above
# 0.6 % until ~(fault errors / 0.006) requests have passed. A 5 % error ratio, held only
# until the notification is out, crosses the 1.44 % fast-burn threshold and still lets the
# alert resolve within minutes; a 100 % ratio would keep it firing for half an hour.
ERROR_RATIO = 0.05


def sink_alerts(alertname: str, status: str) -> list[dict]:
    return clients.get_json("alert-sink", "/api/alerts", params={"alertname": alertname, "status": status})["alerts"]


def prom_alert_state(alertname: str, service: str) -> str:
    alerts = clients.get_json("prometheus", "/api/v1/alerts")["data"]["alerts"]
    states = {a["state"] for a in alerts
              if a["labels"].get("alertname") == alertname and a["labels"].get("service") == service}
    return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"


def sink_messages(channel: str, title: str, seen: set[int] = frozenset()) -> list[dict]:
    """Email or Slack notifications at the sink whose subject/title is `title` (newest first)."""
    body = clients.get_json("alert-sink", "/api/notifications", params={"channel": channel, "limit": 1000})
    return [n for n in body["notifications"] if n["title"] == title and n["id"] not in seen]


def message_ids(channel: str) -> set[int]:
    return {n["id"] for n in clients.get_json("alert-sink", "/api/notifications",
                                         params={"channel": channel, "limit": 1000})["notifications"]}


def check_email(n: dict, runbook: str) -> None:
    c = n["content"]
    assert c["rcpt_to"] == ["oncall@stack.local"] and n["receiver"] == "critical", (c["rcpt_to"], n["receiver"])
    assert f"Runbook:     {runbook}" in c["text"], c["text"]
    assert f'<a href="{runbook}">Runbook</a>' in c["html"], c["html"][:500]


def check_slack(n: dict, runbook: str, color: str) -> None:
    att = n["content"]["attachments"][0]
    assert n["receiver"] == "slack" and att["color"] == color, (n["receiver"], att)
    assert f"<{runbook}|Runbook>" in att["text"] and att["title_link"].endswith("/#/alerts"), att


def alert_rule(alertname: str) -> dict:
    groups = clients.get_json("prometheus", "/api/v1/rules", params={"type": "alert"})["data"]["groups"]
    rules = [r for g in groups for r in g["rules"] if r["name"] == alertname]
    assert rules, f"Prometheus has no alerting rule {alertname}"
    return rules[0]


@pytest.mark.services("prometheus", "alertmanager", "alert-sink")
def test_watchdog_reaches_the_sink(warm: st.Stack) -> None:
    poll_until(lambda: sink_alerts(WATCHDOG, "firing"), 120,
                  f"a firing {WATCHDOG} notification reaches the alert sink", interval=2)


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "shop", "inventory", "loadgen")
def test_errors_alert_fires_reaches_the_sink_and_resolves(warm: st.Stack) -> None:
    assert warm.env.get("PROMETHEUS_CONFIG_FILE") and warm.env.get("ALERTMANAGER_CONFIG_FILE"), (
        f"the drill profile is missing (prometheus/prometheus.drill.yml, alertmanager/alertmanager.drill.yml): "
        f"{st.drill_profile()}")
    rule = alert_rule(ERRORS_ALERT)
    hold_s = float(rule.get("duration") or 0)
    assert prom_alert_state(ERRORS_ALERT, "shop") == "inactive", "the error alert fires before any fault"
    already = {a["notification_id"] for a in sink_alerts(ERRORS_ALERT, "firing")}
    emails, slacks = message_ids("email"), message_ids("slack")
    faults = clients.url("shop", "/admin/faults")
    subject = f"[FIRING:1] {ERRORS_ALERT} shop (critical)"

    t_fault = time.monotonic()
    r = requests.post(faults, json={"error_ratio": ERROR_RATIO}, headers=warm.admin_headers, timeout=10)
    assert r.status_code == 200 and r.json()["error_ratio"] == ERROR_RATIO, r.text
    states: list[str] = []

    def firing() -> bool:
        state = prom_alert_state(ERRORS_ALERT, "shop")
        if not states or states[-1] != state:
            states.append(state)
        return state == "firing"

    def in_alertmanager() -> dict:
        alerts = clients.get_json("alertmanager", "/api/v2/alerts",
                             params={"filter": f'alertname="{ERRORS_ALERT}"', "active": "true"})
        ours = [a for a in alerts if a["labels"].get("service") == "shop"]
        assert ours, f"not in Alertmanager yet: {[a['labels'] for a in alerts]}"
        return ours[0]

    def at_sink(status: str, seen: set[int], ended_after: float = 0.0) -> dict:
        found = [a for a in sink_alerts(ERRORS_ALERT, status)
                 if a["labels"].get("service") == "shop" and a["notification_id"] not in seen
                 and (not ended_after or datetime.fromisoformat(a["endsAt"]).timestamp() >= ended_after)]
        assert found, f"no new {status} {ERRORS_ALERT} notification at the sink yet"
        return found[-1]

    try:
        poll_until(firing, 300, f"{ERRORS_ALERT}{{service=shop}} fires in Prometheus with "
                      f"error_ratio={ERROR_RATIO} on shop", interval=0.5)
        fired_s = time.monotonic() - t_fault
        am_alert = poll_until(in_alertmanager, 60, f"{ERRORS_ALERT}{{service=shop}} is active in Alertmanager")
        # The fault stays on until the notification is out (as in a drill): cleared any
        # earlier, a barely-crossed threshold can resolve before Alertmanager's group_wait.
        firing_note = poll_until(lambda: at_sink("firing", already), 120,
                                    f"a firing {ERRORS_ALERT} notification reaches the alert sink", interval=1)
        notified_s = time.monotonic() - t_fault
        # The link Prometheus rendered (from its external URL) is the one to find in them.
        runbook = firing_note["annotations"]["runbook_url"]
        assert runbook.endswith(f"/runbooks/{ERRORS_ALERT}"), runbook
        # It opens the runbook page: the link's port is the sink's (published on another
        # port in this test stack; with STACK_AUTH its TLS listener's).
        link = urlparse(runbook)
        assert link.scheme == clients.LOGIN.scheme and link.port == 8090, runbook
        page = requests.get(clients.url("alert-sink", link.path), timeout=10)
        assert page.ok and f"<h1>{ERRORS_ALERT}</h1>" in page.text, page.text[:300]
        email = poll_until(lambda: sink_messages("email", subject, emails), 120,
                              f"the email '{subject}' reaches the sink's SMTP listener", interval=1)[0]
        emailed_s = time.monotonic() - t_fault
        slack = poll_until(lambda: sink_messages("slack", subject, slacks), 120,
                              f"the Slack message '{subject}' reaches the sink", interval=1)[0]
    finally:
        # Hold the fault no longer than needed (see ERROR_RATIO), whatever happened.
        cleared = requests.delete(faults, headers=warm.admin_headers, timeout=10)
        t_clear, cleared_at = time.monotonic(), time.time()
        resolved_before = {a["notification_id"] for a in sink_alerts(ERRORS_ALERT, "resolved")}
    assert cleared.status_code == 200 and cleared.json()["error_ratio"] == 0, cleared.text
    st.MEASUREMENTS.setdefault("fault_to_firing_in_prometheus_s", {})[ERRORS_ALERT] = round(fired_s, 1)
    st.MEASUREMENTS.setdefault("fault_to_notification_s", {})[ERRORS_ALERT] = round(notified_s, 1)
    st.MEASUREMENTS.setdefault("alert_states_seen", {})[ERRORS_ALERT] = states
    if hold_s > 0:
        assert states[:1] == ["inactive"] and "pending" in states, (
            f"{ERRORS_ALERT} has for: {hold_s}s but went {' -> '.join(states)}")
    else:  # no `for:` in the rule: Prometheus has no pending phase for it
        assert states[-2:] == ["inactive", "firing"], f"states seen: {states}"
    st.MEASUREMENTS.setdefault("fault_to_email_s", {})[ERRORS_ALERT] = round(emailed_s, 1)
    receivers = {x["name"] for x in am_alert.get("receivers") or []}
    assert firing_note["receiver"] in receivers, (firing_note["receiver"], receivers)
    check_email(email, runbook)
    check_slack(slack, runbook, "danger")

    # Only a resolution after the fault was cleared counts (not a flap while it was on).
    poll_until(lambda: at_sink("resolved", resolved_before, ended_after=cleared_at), 600,
                  f"the resolved {ERRORS_ALERT} notification reaches the sink after the fault was cleared",
                  interval=2)
    st.MEASUREMENTS.setdefault("clear_to_resolved_s", {})[ERRORS_ALERT] = round(time.monotonic() - t_clear, 1)
    resolved = subject.replace("[FIRING:1]", "[RESOLVED]")
    check_email(poll_until(lambda: sink_messages("email", resolved, emails), 120,
                              f"the resolved email '{resolved}' reaches the sink", interval=2)[0], runbook)
    check_slack(poll_until(lambda: sink_messages("slack", resolved, slacks), 120,
                              f"the resolved Slack message '{resolved}' reaches the sink", interval=2)[0],
                runbook, "good")


LATENCY_ALERT = "DemoHighLatencyP95"


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "shop", "inventory", "loadgen")
def test_latency_alert_goes_pending_then_firing_and_reaches_the_sink(warm: st.Stack) -> None:
    # The burn-rate alert has no `for:`, so this one (for: 30s) shows the pending phase.
    rule = alert_rule(LATENCY_ALERT)
    assert float(rule.get("duration") or 0) > 0, f"{LATENCY_ALERT} has no for: {rule}"
    assert prom_alert_state(LATENCY_ALERT, "shop") == "inactive", "the latency alert fires before any fault"
    already = {a["notification_id"] for a in sink_alerts(LATENCY_ALERT, "firing")}
    faults = clients.url("shop", "/admin/faults")
    states: list[str] = []

    def firing() -> bool:
        state = prom_alert_state(LATENCY_ALERT, "shop")
        if not states or states[-1] != state:
            states.append(state)
        return state == "firing"

    def at_sink() -> list[dict]:
        return [a for a in sink_alerts(LATENCY_ALERT, "firing")
                if a["labels"].get("service") == "shop" and a["notification_id"] not in already]

    t_fault = time.monotonic()
    r = requests.post(faults, json={"latency_ms": 700}, headers=warm.admin_headers, timeout=10)
    assert r.status_code == 200 and r.json()["latency_ms"] == 700, r.text
    try:
        poll_until(firing, 240, f"{LATENCY_ALERT}{{service=shop}} fires with 700 ms added latency", interval=0.5)
        poll_until(at_sink, 120, f"a firing {LATENCY_ALERT} notification reaches the alert sink", interval=1)
        st.MEASUREMENTS.setdefault("fault_to_notification_s", {})[LATENCY_ALERT] = round(time.monotonic() - t_fault, 1)
    finally:
        cleared = requests.delete(faults, headers=warm.admin_headers, timeout=10)
    assert cleared.status_code == 200 and cleared.json()["latency_ms"] == 0, cleared.text
    st.MEASUREMENTS.setdefault("alert_states_seen", {})[LATENCY_ALERT] = states
    assert states == ["inactive", "pending", "firing"], f"{LATENCY_ALERT} went {' -> '.join(states)}"


@pytest.mark.services("alertmanager", "alert-sink")
def test_inhibited_warning_sends_nothing_while_its_critical_pages(warm: st.Stack) -> None:
    """Through the real Alertmanager and sink: a critical alert and a warning on the same
    service. The critical goes out by webhook, email and Slack; the warning, inhibited,
    by none of them. Both are posted to Alertmanager's API as Prometheus would."""
    service = f"e2e-{int(time.time())}"
    page, warn = "E2ECriticalDrill", "E2EInhibitedWarning"
    now = datetime.now(timezone.utc)
    alerts = [{"labels": {"alertname": name, "severity": sev, "service": service},
               "annotations": {"summary": f"{name} on {service}"},
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat()}
              for name, sev in ((page, "critical"), (warn, "warning"))]
    r = requests.post(clients.url("alertmanager", "/api/v2/alerts"), json=alerts, timeout=10)
    assert r.status_code == 200, r.text
    subject = f"[FIRING:1] {page} {service} (critical)"
    poll_until(lambda: sink_messages("email", subject), 60, f"the email for {page} arrives", interval=1)
    poll_until(lambda: sink_messages("slack", subject), 60, f"the Slack message for {page} arrives", interval=1)
    poll_until(lambda: sink_alerts(page, "firing"), 60, f"the webhook notification for {page} arrives")
    status = {a["labels"]["alertname"]: a["status"] for a in clients.get_json(
        "alertmanager", "/api/v2/alerts", params={"filter": f'service="{service}"'})}
    assert status[warn]["state"] == "suppressed" and status[warn]["inhibitedBy"], status
    time.sleep(15)  # longer than the drill profile's group_wait and group_interval
    everything = clients.get_json("alert-sink", "/api/notifications", params={"limit": 1000})["notifications"]
    leaked = [(n["channel"], n["title"]) for n in everything if warn in n["title"] or
              any(a.get("alertname") == warn for a in n["alerts"])]
    assert not leaked, f"the inhibited warning was sent: {leaked}"
