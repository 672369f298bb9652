#!/usr/bin/env python3
"""`make grafana-password [NEW=...]`: change the Grafana admin password for real.

Grafana reads GF_SECURITY_ADMIN_PASSWORD(__FILE) on its first start only; after that the
password lives in Grafana's database, so editing .env alone changes nothing. This logs in
to the running Grafana with the password from .env, changes it through Grafana's HTTP API
(PUT /api/user/password), and only then writes the new one into .env (kept mode 0600).
Without NEW a random password is generated.

    python3 scripts/grafana_password.py [--new PASSWORD] [--env-file .env] [--url URL]

Standard library only.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compose_info import REPO, browser_host, published  # noqa: E402


def read_env(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", path.read_text(), re.MULTILINE))


def write_password(path: Path, password: str) -> None:
    text = path.read_text()
    line = f"GRAFANA_ADMIN_PASSWORD={password}"
    text, n = re.subn(r"^GRAFANA_ADMIN_PASSWORD=.*$", lambda _: line, text, flags=re.MULTILINE)
    if n == 0:
        text += ("" if text.endswith("\n") else "\n") + line + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def grafana_url() -> str:
    ports = published().get("grafana", {})
    if 3000 not in ports:
        raise SystemExit("Grafana is not running (make up), so its password cannot be changed now.")
    address, port = ports[3000]
    return f"http://{browser_host(address)}:{port}"


def change(url: str, user: str, old: str, new: str) -> None:
    body = json.dumps({"oldPassword": old, "newPassword": new, "confirmNew": new}).encode()
    auth = base64.b64encode(f"{user}:{old}".encode()).decode()
    req = urllib.request.Request(f"{url}/api/user/password", data=body, method="PUT", headers={
        "Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        if exc.code == 401:
            raise SystemExit(f"Grafana refused user {user!r} with the password in .env ({detail}). "
                             "If it was changed in Grafana's UI, put the current one into .env first.")
        raise SystemExit(f"Grafana answered {exc.code} to the password change: {detail}")
    except urllib.error.URLError as exc:
        raise SystemExit(f"cannot reach Grafana at {url}: {exc.reason}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", help="the new password (default: generated)")
    ap.add_argument("--env-file", type=Path, default=REPO / ".env")
    ap.add_argument("--url", help="Grafana's URL (default: read from docker compose)")
    a = ap.parse_args(argv)
    if not a.env_file.exists():
        raise SystemExit(f"{a.env_file} does not exist: run make up first")
    env = read_env(a.env_file)
    user, old = env.get("GRAFANA_ADMIN_USER") or "admin", env.get("GRAFANA_ADMIN_PASSWORD", "")
    new = a.new or secrets.token_urlsafe(24)
    if len(new) < 12:
        raise SystemExit("choose a password of 12 characters or more")
    change(a.url or grafana_url(), user, old, new)
    write_password(a.env_file, new)
    print(f"Grafana password of {user!r} changed; the new one is GRAFANA_ADMIN_PASSWORD in {a.env_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
