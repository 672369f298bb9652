#!/usr/bin/env python3
"""`make grafana-password [NEW_FILE=path|-]`: change the Grafana admin password for real.

Grafana reads GF_SECURITY_ADMIN_PASSWORD__FILE on its first start only; after that the
password lives in Grafana's database, so editing .env alone changes nothing. This logs in
to the running Grafana with the password from .env, changes it through Grafana's HTTP API
(PUT /api/user/password), and only then writes the new one into .env and its secret file.
The new password comes from a file, or from standard input (`-`; typed at a prompt when
it is a terminal), never from the command line, where `ps` and the shell's history would
show it. Without one a random password is generated.

    python3 scripts/grafana_password.py [--new-file PATH|-] [--env-file .env] [--url URL]

Standard library only.
"""
from __future__ import annotations

import argparse
import base64
import getpass
import json
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envfile  # noqa: E402
from compose_info import REPO, Login, browser_host, published  # noqa: E402


def grafana_url() -> str:
    ports = published().get("grafana", {})
    if 3000 not in ports:
        raise SystemExit("Grafana is not running (make up), so its password cannot be changed now.")
    address, port = ports[3000]
    return f"{Login.from_settings().scheme}://{browser_host(address)}:{port}"  # https while STACK_AUTH is on


def change(url: str, user: str, old: str, new: str) -> None:
    body = json.dumps({"oldPassword": old, "newPassword": new, "confirmNew": new}).encode()
    auth = base64.b64encode(f"{user}:{old}".encode()).decode()
    req = urllib.request.Request(f"{url}/api/user/password", data=body, method="PUT", headers={
        "Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30, context=Login.from_settings().context()) as r:
            r.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        if exc.code == 401:
            raise SystemExit(f"Grafana refused user {user!r} with the password in .env ({detail}). "
                             "If it was changed in Grafana's UI, put the current one into .env first.")
        raise SystemExit(f"Grafana answered {exc.code} to the password change: {detail}")
    except urllib.error.URLError as exc:
        raise SystemExit(f"cannot reach Grafana at {url}: {exc.reason}")


def new_password(source: str | None) -> str:
    """From a file, from standard input (`-`), or generated."""
    if source is None:
        return secrets.token_urlsafe(24)
    if source == "-":
        return (getpass.getpass("New Grafana password: ") if sys.stdin.isatty() else sys.stdin.readline()).strip()
    return Path(source).read_text().strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-file", help="a file holding the new password, or - for standard input "
                                       "(default: generated)")
    ap.add_argument("--env-file", type=Path, default=REPO / ".env")
    ap.add_argument("--url", help="Grafana's URL (default: read from docker compose)")
    a = ap.parse_args(argv)
    if not a.env_file.exists():
        raise SystemExit(f"{a.env_file} does not exist: run make up first")
    env = envfile.read(a.env_file)
    user, old = env.get("GRAFANA_ADMIN_USER") or "admin", env.get("GRAFANA_ADMIN_PASSWORD", "")
    new = new_password(a.new_file)
    if len(new) < 12:
        raise SystemExit("choose a password of 12 characters or more")
    change(a.url or grafana_url(), user, old, new)
    envfile.set_value(a.env_file, "GRAFANA_ADMIN_PASSWORD", new)
    envfile.write_secrets(envfile.read(a.env_file), envfile.secrets_dir(a.env_file))
    print(f"Grafana password of {user!r} changed; the new one is GRAFANA_ADMIN_PASSWORD in {a.env_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
