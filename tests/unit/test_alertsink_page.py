"""The alert sink's page in a real browser (Debian's headless Chromium, driven by
Playwright): a firing and resolved pair shows as one row with the time between, the
runbook link opens the rendered runbook, the email's content is one click away, and the
page refreshes itself when a new notification arrives. The screenshot goes to
build/alert-sink.png (docs/images/alert-sink.png in the README is one of these)."""
from __future__ import annotations

import copy
import shutil
import smtplib

import pytest
import requests

from demo_app import alertsink
from demo_app.settings import AlertSinkSettings
from demo_app.telemetry import Telemetry
from tests.tooling import REPO

from .conftest import LoopbackServer, closed_port
from .test_demo_alertsink import FIRING, SLACK, _email

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = REPO / "build" / "alert-sink.png"


@pytest.fixture
def page_with_notifications(tmp_path):
    if CHROMIUM is None:
        pytest.skip("no Chromium (Debian package chromium) to render the page in")
    from playwright.sync_api import sync_playwright

    smtp_port = closed_port()
    settings = AlertSinkSettings(store_path=str(tmp_path / "sink.db"), smtp_port=smtp_port,
                                 runbooks_dir=str(REPO / "docs" / "runbooks"))
    server = LoopbackServer(alertsink.create_app(settings, Telemetry("alert-sink", enabled=False)))
    try:
        demo = copy.deepcopy(FIRING)
        demo["alerts"][0]["annotations"]["runbook_url"] = f"{server.url}/runbooks/TargetDown"
        fixed = copy.deepcopy(demo)
        fixed.update(status="resolved")
        for a in fixed["alerts"]:
            a.update(status="resolved", endsAt="2026-11-22T20:41:56.014Z")
        for body in (demo, fixed):
            assert requests.post(f"{server.url}/webhook", json=body, timeout=10).ok
        assert requests.post(f"{server.url}/slack/slack", json=SLACK, timeout=10).text == "ok"
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.send_message(_email())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 800})
                yield server, page
            finally:
                browser.close()
    finally:
        server.stop()


def test_page_in_a_real_browser(page_with_notifications):
    server, page = page_with_notifications
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url + "/")
    rows = page.locator("#rows tr")
    assert rows.count() == 3, page.content()[:2000]  # webhook pair, email, Slack
    webhook = page.locator("#rows tr.resolved", has_text="webhook")
    assert webhook.locator("td.st").inner_text() == "resolved" and " s" in webhook.inner_text()
    # The email's content is one click away, its HTML in a sandboxed frame.
    email = page.locator("#rows tr", has_text="email")
    email.locator("summary").click()
    assert email.locator("iframe[sandbox]").count() == 1
    assert "Runbook: http://localhost:8090/runbooks/X" in email.locator("pre").first.inner_text()
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # It refreshes itself: a new notification shows up without a reload, open rows stay open.
    fresh = copy.deepcopy(FIRING)
    fresh["groupKey"] = "{}:{alertname=\"Fresh\"}"
    fresh["alerts"] = [dict(fresh["alerts"][0], labels={"alertname": "FreshAlert", "severity": "warning"})]
    assert requests.post(f"{server.url}/webhook", json=fresh, timeout=10).ok
    page.locator("#rows tr", has_text="FreshAlert").wait_for(timeout=30_000)  # a few of its 5 s refreshes, on a busy machine too
    assert page.locator("#rows tr", has_text="email").locator("details").get_attribute("open") is not None

    # The runbook link opens the rendered runbook.
    webhook.locator("a", has_text="runbook").click()
    page.wait_for_load_state()
    assert page.locator("h1").first.inner_text() == "TargetDown"
    # The only complaint: the test email's <script> was not run in its sandboxed frame.
    blocked = [e for e in errors if "Blocked script execution in 'about:srcdoc'" in e]
    assert blocked and len(blocked) == len(errors), [e for e in errors if e not in blocked]
