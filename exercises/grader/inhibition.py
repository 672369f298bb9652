"""Inhibition is judged by a real Alertmanager: the learner's config loaded, the exercise's
alerts posted, and each alert's status read back (Alertmanager marks what its inhibit
rules mute when it answers /api/v2/alerts)."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from scripts.validate import image, missing_image


def settled(base: str, quiet_s: float = 1.0, timeout_s: float = 15.0) -> dict[str, bool]:
    """alertname -> muted, once the answer has not changed for `quiet_s`. Alertmanager's
    inhibitor learns of posted alerts on its own goroutine: read at once, a busy machine
    answers before it has seen the source alert (every target unmuted)."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(base, timeout=5) as r:
            muted = {a["labels"]["alertname"]: bool(a["status"]["inhibitedBy"]) for a in json.load(r)}
        now = time.monotonic()
        if muted != last:
            last, since = muted, now
        elif now - since >= quiet_s or now > deadline:
            return muted
        time.sleep(0.2)


def run(grade, ex, work: Path) -> None:
    spec = ex.spec.get("inhibition")
    if not spec:
        return
    why = missing_image("ALERTMANAGER_IMAGE")
    if why:
        for c in spec["checks"]:
            grade.add("inhibition", c["name"], None, why)
        return
    # Loopback only; the receivers' addresses (the stack's sink) do not resolve here, and
    # nothing is sent within the group_wait anyway.
    cid = subprocess.run(["docker", "run", "-d", "--rm", "-p", "127.0.0.1::9093", "-v", f"{work}:/w:ro",
                          image("ALERTMANAGER_IMAGE"), "--config.file=/w/alertmanager.yml",
                          "--storage.path=/tmp", "--cluster.listen-address="],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        port = subprocess.run(["docker", "port", cid, "9093/tcp"], capture_output=True, text=True,
                              check=True).stdout.split(":")[-1].strip()
        base = f"http://127.0.0.1:{port}/api/v2/alerts"
        deadline = time.monotonic() + 30
        while True:
            try:
                post = urllib.request.Request(base, data=json.dumps([{"labels": a} for a in spec["alerts"]]).encode(),
                                              headers={"Content-Type": "application/json"}, method="POST")
                urllib.request.urlopen(post, timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        muted = settled(base)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    for c in spec["checks"]:
        grade.add("inhibition", c["name"], muted.get(c["alertname"]) == c["inhibited"], c["hint"])
