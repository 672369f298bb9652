"""Alertmanager answers: `amtool check-config` (static), `amtool config routes test` per
case (routing), and inhibition judged by real Alertmanagers: each answer's config loaded
in its own Alertmanager process, the exercise's alerts posted, and each alert's status read
back (Alertmanager marks what its inhibit rules mute when it answers /api/v2/alerts).
Each stage is one container for the whole batch."""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

from scripts.validate import image

from . import tools

FIRST_PORT = 9101
# Alertmanagers started at once (each ~30 MB): a batch larger than this runs in rounds.
PER_CONTAINER = 12


def static(subs) -> list:
    """amtool check-config; returns the answers whose config loads."""
    paths = tools.stage_files(subs, "ALERTMANAGER_IMAGE", "amtool check-config", "alertmanager.yml")
    if not paths:
        return []
    p = tools.run("ALERTMANAGER_IMAGE", "amtool", ["check-config", *paths], {subs[0].dir.parent: "/w"})
    # "Checking '<path>'  SUCCESS" or "Checking '<path>'  FAILED: <why>"
    said = {m.group(1): m.group(2)
            for m in re.finditer(r"Checking '([^']+)'\s+(SUCCESS|FAILED:.*)", p.stdout + p.stderr)}
    valid = []
    for s, path in zip(subs, paths):
        verdict = said.get(path, "FAILED: amtool said nothing about it: " + (p.stdout + p.stderr).strip()[-200:])
        s.grade.add("static", "amtool check-config", verdict == "SUCCESS", verdict.removeprefix("FAILED:").strip())
        if verdict == "SUCCESS":
            valid.append(s)
    return valid


def routing(subs) -> None:
    commands, cases = {}, {}
    for s in subs:
        for i, case in enumerate(s.ex.spec.get("routes", [])):
            key = f"{s.dir.name}-r{i:02d}"
            commands[key] = ["amtool", "config", "routes", "test", f"--config.file=/w/{s.dir.name}/alertmanager.yml",
                             f"--verify.receivers={case['receiver']}",
                             *[f"{k}={v}" for k, v in case["labels"].items()]]
            cases[key] = (s, case)
    if not commands:
        return
    answers = tools.run_each("ALERTMANAGER_IMAGE", commands, {subs[0].dir.parent: "/w"})
    for key, (s, case) in cases.items():
        rc, out = answers[key]
        s.grade.add("routing", case["name"], rc == 0, f"{case['hint']} (this alert went to: {out.strip()[-120:]})")


def settled(bases: list[str], quiet_s: float = 1.0, timeout_s: float = 20.0) -> list[dict[str, bool]]:
    """For each Alertmanager, alertname -> muted, once its answer has not changed for
    `quiet_s`. Alertmanager's inhibitor learns of posted alerts on its own goroutine: read
    at once, a busy machine answers before it has seen the source alert."""
    last: list = [None] * len(bases)
    since = [time.monotonic()] * len(bases)
    deadline = time.monotonic() + timeout_s
    while True:
        now = time.monotonic()
        for i, base in enumerate(bases):
            with urllib.request.urlopen(base, timeout=5) as r:
                muted = {a["labels"]["alertname"]: bool(a["status"]["inhibitedBy"]) for a in json.load(r)}
            if muted != last[i]:
                last[i], since[i] = muted, now
        if all(now - t >= quiet_s for t in since) or now > deadline:
            return last
        time.sleep(0.2)


def _post(base: str, alerts: list[dict], deadline: float) -> None:
    body = json.dumps([{"labels": a} for a in alerts]).encode()
    while True:
        try:
            req = urllib.request.Request(base, data=body, headers={"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(req, timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _round(subs) -> list[dict[str, bool]]:
    """One container, one Alertmanager process per answer (loopback ports only; the
    receivers' addresses do not resolve here, and nothing is sent within group_wait)."""
    ports = [FIRST_PORT + i for i in range(len(subs))]
    script = " ".join(f"alertmanager --config.file=/w/{s.dir.name}/alertmanager.yml --storage.path=/tmp/{s.dir.name} "
                      f"--web.listen-address=:{port} --cluster.listen-address= --log.level=warn &"
                      for s, port in zip(subs, ports)) + " wait"
    publish = [a for port in ports for a in ("-p", f"127.0.0.1::{port}")]
    cid = subprocess.run(["docker", "run", "-d", "--rm", *publish, "-v", f"{subs[0].dir.parent}:/w:ro",
                          "--entrypoint", "sh", image("ALERTMANAGER_IMAGE"), "-c", script],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        bases = []
        for port in ports:
            host = subprocess.run(["docker", "port", cid, f"{port}/tcp"], capture_output=True, text=True,
                                  check=True).stdout.splitlines()[0].split(":")[-1].strip()
            bases.append(f"http://127.0.0.1:{host}/api/v2/alerts")
        deadline = time.monotonic() + 60
        for s, base in zip(subs, bases):
            _post(base, s.ex.spec["inhibition"]["alerts"], deadline)
        return settled(bases)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def inhibition(subs) -> None:
    subs = [s for s in subs if s.ex.spec.get("inhibition")]
    for start in range(0, len(subs), PER_CONTAINER):
        chunk = subs[start:start + PER_CONTAINER]
        for s, muted in zip(chunk, _round(chunk)):
            for c in s.ex.spec["inhibition"]["checks"]:
                s.grade.add("inhibition", c["name"], muted.get(c["alertname"]) == c["inhibited"], c["hint"])
