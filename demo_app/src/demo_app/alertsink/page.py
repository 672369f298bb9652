"""The sink's page: where a trainee watches alerts arrive. One row per alert group and
channel: firing and resolved paired with the time between them, the route (receiver)
and channel it came through, the description and runbook link, and the notification's
content (the rendered email or Slack message, the webhook payload) one click away. The
table refreshes itself every few seconds (page.js), keeping open rows open."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

RUNBOOK_LINK = re.compile(r"https?://[^\s\"'<>]+/runbooks/[A-Za-z0-9_-]+")
CHANNEL_LABEL = {"webhook": "webhook", "email": "email", "slack": "Slack"}


@dataclass
class Thread:
    """One alert group on one channel, from its first firing notification on."""

    channel: str
    receiver: str
    group: str
    title: str
    fired_at: str
    notifications: list[dict] = field(default_factory=list)
    resolved_at: str | None = None
    alerts: dict[str, dict] = field(default_factory=dict)  # alert identity -> latest alert

    @property
    def key(self) -> str:
        return f"{self.channel}|{self.receiver}|{self.group}|{self.fired_at}"

    @property
    def status(self) -> str:
        return "resolved" if self.resolved_at else "firing"

    def took(self) -> str:
        if not self.resolved_at:
            return ""
        s = (datetime.fromisoformat(self.resolved_at) - datetime.fromisoformat(self.fired_at)).total_seconds()
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def threads(notifications: list[dict]) -> list[Thread]:
    """Pairs notifications (newest first, as the store gives them) into threads,
    newest thread first."""
    open_threads: dict[tuple, Thread] = {}
    done: list[Thread] = []
    for n in reversed(notifications):
        key = (n["channel"], n["receiver"], n["group"])
        t = open_threads.get(key)
        if t is None or (t.resolved_at and n["status"] == "firing"):
            if t is not None:
                done.append(t)
            t = open_threads[key] = Thread(n["channel"], n["receiver"], n["group"], n["title"], n["received_at"])
        t.notifications.append(n)
        t.title = n["title"] or t.title
        for a in n["alerts"]:
            t.alerts[a.get("fingerprint") or json.dumps(a.get("labels"), sort_keys=True)] = a
        if n["status"] == "resolved" and all(a.get("status") == "resolved" for a in t.alerts.values()):
            t.resolved_at = n["received_at"]
        elif n["status"] == "firing":
            t.resolved_at = None
    return sorted([*done, *open_threads.values()], key=lambda t: t.fired_at, reverse=True)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _time(iso: str | None) -> str:
    return _e(iso[11:19]) if iso else ""


def _description_and_runbook(t: Thread) -> tuple[str, str]:
    for a in t.alerts.values():
        ann = a.get("annotations")
        ann = ann if isinstance(ann, dict) else {}
        desc = ann.get("description") or ann.get("summary") or ""
        if desc or ann.get("runbook_url"):
            return str(desc), str(ann.get("runbook_url", ""))
    latest = t.notifications[-1]["content"]
    text = latest.get("text")
    if not isinstance(text, str) or not text:  # a webhook's body is the sender's: any JSON shape
        text = json.dumps(latest)
    m = RUNBOOK_LINK.search(text)
    return "", m.group(0) if m else ""


def _content(n: dict) -> str:
    c = n["content"]
    when = f"<div class='meta'>#{n['id']} {n['status']} at {_e(n['received_at'])}</div>"
    if n["channel"] == "email":
        headers = "".join(f"<div><b>{_e(k)}:</b> {_e(v)}</div>" for k, v in
                          (("Subject", c.get("subject")), ("Delivered to", ", ".join(c.get("rcpt_to", []))),
                           *c.get("headers", {}).items()))
        body = f"<pre>{_e(c.get('text', ''))}</pre>" if c.get("text") else ""
        if c.get("html"):
            # A sandboxed frame: the email's HTML renders, but runs nothing.
            body += f"<iframe sandbox title='HTML part' srcdoc=\"{_e(c['html'])}\"></iframe>"
        return when + headers + body
    if n["channel"] == "slack":
        parts = [f"<div>{_e(c['text'])}</div>"] if c.get("text") else []
        for att in c.get("attachments", []):
            title = _e(att.get("title", ""))
            if att.get("title_link"):
                title = f"<a href='{_e(att['title_link'])}'>{title}</a>"
            fields = "".join(f"<div><b>{_e(f.get('title', ''))}</b> {_e(f.get('value', ''))}</div>"
                             for f in att.get("fields", []))
            parts.append(f"<div class='att' style='border-left-color:{_e(att.get('color') or '#ccc')}'>"
                         f"<b>{title}</b><pre>{_e(att.get('text', ''))}</pre>{fields}"
                         f"<small>{_e(att.get('footer', ''))}</small></div>")
        if c.get("blocks"):
            parts.append(f"<pre>{_e(json.dumps(c['blocks'], indent=1))}</pre>")
        return when + "".join(parts)
    return when + f"<pre>{_e(json.dumps(c, indent=1))}</pre>"


def rows(notifications: list[dict]) -> str:
    out = []
    for t in threads(notifications):
        desc, runbook = _description_and_runbook(t)
        names = sorted({a.get("labels", {}).get("alertname", "") for a in t.alerts.values()} - {""})
        severity = sorted({a.get("labels", {}).get("severity", "") for a in t.alerts.values()} - {""})
        runbook_html = f"<a href='{_e(runbook)}'>runbook</a>" if runbook else ""
        content = "".join(_content(n) for n in reversed(t.notifications))
        out.append(
            f"<tr class='{t.status}' data-key='{_e(t.key)}'>"
            f"<td class='st'>{t.status}</td><td>{_e(CHANNEL_LABEL.get(t.channel, t.channel))}</td>"
            f"<td>{_e(t.receiver)}</td>"
            f"<td><b>{_e(', '.join(names) or t.title)}</b> {_e(', '.join(severity))}<br>{_e(desc)}</td>"
            f"<td>{runbook_html}</td><td>{_time(t.fired_at)}</td><td>{_time(t.resolved_at)}</td>"
            f"<td>{t.took()}</td>"
            f"<td><details><summary>{len(t.notifications)} notification(s)</summary>{content}</details></td></tr>")
    return "\n".join(out) or "<tr><td colspan='9'>No notifications yet.</td></tr>"


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:5px 8px;text-align:left;vertical-align:top}
tr.firing .st{color:#b00;font-weight:bold}tr.resolved .st{color:#070}
details pre{white-space:pre-wrap;max-width:60em;background:#f6f6f6;padding:6px}
iframe{width:100%;min-height:18em;border:1px solid #ccc;background:#fff}
.att{border-left:4px solid #ccc;padding-left:8px;margin:6px 0}.meta{color:#777;margin-top:8px}"""


def page(notifications: list[dict], stored: int, capacity: int, stored_bytes: int, max_bytes: int) -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>alert-sink</title><link rel="icon" href="data:,">
<style>{STYLE}</style></head>
<body><h1>alert-sink</h1>
<p>What Alertmanager delivered, by channel: webhook, email (SMTP) and Slack. {stored} of at most
{capacity} notifications kept ({stored_bytes // 1024} of {max_bytes // 1024} KiB), across restarts.
JSON: <a href="api/notifications">api/notifications</a>, <a href="api/alerts">api/alerts</a>.
<a href="runbooks/">Runbooks</a>.</p>
<table><thead><tr><th>status</th><th>channel</th><th>receiver</th><th>alerts</th><th>runbook</th>
<th>fired</th><th>resolved</th><th>took</th><th>content</th></tr></thead>
<tbody id="rows">{rows(notifications)}</tbody></table>
<script src="static/page.js"></script></body></html>"""


# Refreshes the rows every 5 s without a page reload; open <details> stay open.
SCRIPT = """(function () {
  async function refresh() {
    try {
      const r = await fetch("rows", {cache: "no-store"});
      if (!r.ok) return;
      const open = new Set([...document.querySelectorAll("#rows tr")]
        .filter(tr => tr.querySelector("details[open]")).map(tr => tr.dataset.key));
      const body = document.getElementById("rows");
      body.innerHTML = await r.text();
      body.querySelectorAll("tr").forEach(tr => {
        if (open.has(tr.dataset.key)) tr.querySelector("details").open = true;
      });
    } catch (e) { /* the sink restarting: try again next time */ }
  }
  setInterval(refresh, 5000);
})();
"""
