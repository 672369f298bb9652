"""The notification templates (alertmanager/templates/), rendered by the real renderer:
`amtool template render` of the pinned Alertmanager, against fixture alerts (one, many,
firing, resolved, missing annotations), compared with the text expected, written by hand."""
from __future__ import annotations

import pytest

from tests.tooling import REPO, run_tool

AM_DIR = REPO / "alertmanager"
FIXTURES = REPO / "tests" / "config" / "alertmanager_fixtures"


def render(template: str, fixture: str, kind: str = "text") -> str:
    p = run_tool("ALERTMANAGER_IMAGE", "amtool", "template", "render",
                 "--template.glob=/etc/alertmanager/templates/*.tmpl",
                 f"--template.data=/fixtures/{fixture}.json", f"--template.type={kind}",
                 f'--template.text={{{{ template "{template}" . }}}}',
                 mounts={AM_DIR: "/etc/alertmanager", FIXTURES: "/fixtures"})
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.rstrip("\n")


@pytest.mark.parametrize("fixture, subject", [
    ("one-firing", "[FIRING:1] DemoErrorBudgetBurnFast shop (critical)"),
    ("resolved", "[RESOLVED] DemoErrorBudgetBurnFast shop (critical)"),
    ("many", "[FIRING:2] TargetDown loadgen (warning)"),
    ("missing-annotations", "[FIRING:1] SomethingNew"),
])
def test_subject(fixture, subject):
    assert render("stack.email.subject", fixture) == subject


EMAIL_ONE_FIRING = """\
[FIRING:1] DemoErrorBudgetBurnFast shop (critical)

1 firing:

FIRING: shop burns its error budget 14x too fast
  Description: 1.9% of shop requests fail (budget: 0.1%).
  Severity:    critical
  Service:     shop
  Runbook:     http://localhost:8090/runbooks/DemoErrorBudgetBurnFast
  Started:     2026-12-01 10:00:00 UTC
  Prometheus:  http://localhost:9090/graph?g0.expr=x

Alertmanager: http://localhost:9093/#/alerts
Grafana:      http://localhost:3000/d/alerts
Route:        critical"""

EMAIL_RESOLVED = """\
[RESOLVED] DemoErrorBudgetBurnFast shop (critical)

1 resolved:

RESOLVED: shop burns its error budget 14x too fast
  Description: 1.9% of shop requests fail (budget: 0.1%).
  Severity:    critical
  Service:     shop
  Runbook:     http://localhost:8090/runbooks/DemoErrorBudgetBurnFast
  Started:     2026-12-01 10:00:00 UTC
  Resolved:    2026-12-01 10:07:30 UTC
  Prometheus:  http://localhost:9090/graph?g0.expr=x

Alertmanager: http://localhost:9093/#/alerts
Grafana:      http://localhost:3000/d/alerts
Route:        critical"""

EMAIL_MISSING = """\
[FIRING:1] SomethingNew

1 firing:

FIRING: SomethingNew
  Description: (no description)
  Severity:    (none)
  Service:     (none)
  Runbook:     (no runbook)
  Started:     2026-12-01 10:00:00 UTC
  Prometheus:  (no link)

Alertmanager: http://stack.example:9093/#/alerts
Grafana:      http://stack.example:3000/d/alerts
Route:        default"""


@pytest.mark.parametrize("fixture, expected", [
    ("one-firing", EMAIL_ONE_FIRING), ("resolved", EMAIL_RESOLVED), ("missing-annotations", EMAIL_MISSING),
])
def test_email_text(fixture, expected):
    assert render("stack.email.text", fixture) == expected


def test_grouped_email_lists_every_alert_firing_first():
    text = render("stack.email.text", "many")
    assert text.splitlines()[:4] == ["[FIRING:2] TargetDown loadgen (warning)", "", "2 firing:", ""]
    order = [text.index(f"(loadgen:{port}) is down") for port in (8082, 9999, 7777)]
    assert order == sorted(order), "firing alerts first, then the resolved one"
    assert "1 resolved:" in text and text.count("Runbook:     http://localhost:8090/runbooks/TargetDown") == 3


def test_email_html_escapes_and_links():
    html = render("stack.email.html", "one-firing", kind="html")
    assert html.startswith("<!doctype html>") and "<h3>[FIRING:1] DemoErrorBudgetBurnFast shop (critical)</h3>" in html
    assert '<a href="http://localhost:8090/runbooks/DemoErrorBudgetBurnFast">Runbook</a>' in html
    assert '<a href="http://localhost:3000/d/alerts">Grafana</a>' in html
    assert "1.9% of shop requests fail (budget: 0.1%)." in html
    missing = render("stack.email.html", "missing-annotations", kind="html")
    assert "(no description)" in missing and "(no runbook)" in missing and "Prometheus</a>" not in missing


SLACK_ONE_FIRING = """\
:red_circle: *shop burns its error budget 14x too fast*
1.9% of shop requests fail (budget: 0.1%).
Severity: `critical` Service: `shop`
<http://localhost:8090/runbooks/DemoErrorBudgetBurnFast|Runbook> | <http://localhost:9090/graph?g0.expr=x|Prometheus>
<http://localhost:3000/d/alerts|Grafana: Alerts dashboard>"""


def test_slack_text_and_color():
    assert render("stack.slack.text", "one-firing") == SLACK_ONE_FIRING
    resolved = render("stack.slack.text", "resolved")
    assert resolved.startswith(":large_green_circle: *shop burns its error budget 14x too fast*")
    assert [render("stack.slack.color", f) for f in ("one-firing", "many", "resolved")] == ["danger", "warning", "good"]
    grouped = render("stack.slack.text", "many")
    assert grouped.count(":red_circle:") == 2 and grouped.count(":large_green_circle:") == 1
    assert "(no description)" in render("stack.slack.text", "missing-annotations")
