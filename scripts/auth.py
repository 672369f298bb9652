#!/usr/bin/env python3
"""The files STACK_AUTH needs (README, "Share it with your team"), in one folder the
protected services mount read-only at /run/stack-auth:

    python3 scripts/auth.py              (make up runs it while STACK_AUTH is on; make reload too)

Written into <SECRETS_DIR>/auth from .env and the certificates:
  cert.pem, key.pem   the certificate every published port presents, and its key: the
                      local CA's (`make certs`, <SECRETS_DIR>/tls) or yours
                      (STACK_TLS_CERT_FILE, STACK_TLS_KEY_FILE)
  ca.pem              the CA that signed it: what the stack's own clients trust
                      (STACK_TLS_CA_FILE with your certificate)
  web.yml             Prometheus' and Alertmanager's web config: TLS with the above, and
                      STACK_AUTH_USER with a bcrypt hash of STACK_AUTH_PASSWORD
  htpasswd            the same login for Jaeger's query server (its basicauth extension)
  client.yml          the HTTP client config of Prometheus' scrapes of itself and
                      Alertmanager, and of their healthchecks (promtool, amtool): the
                      login, the CA
  user, password      STACK_AUTH_USER and STACK_AUTH_PASSWORD, for the stack's own clients
                      (Prometheus' scrapes and alerts, Jaeger's Monitor tab, Grafana's
                      datasources)
  authorization       the same login as an HTTP Authorization header's value, for the
                      collector's export to Prometheus' OTLP receiver (its basicauth
                      extension does not build at the pinned release: a header it is)
  otlp-token          STACK_OTLP_TOKEN (the collector's bearertokenauth reads it)

A folder, not compose secrets: a file renamed into it reaches the running containers
(a compose secret stays the file it was at start), so `make reload` can rotate a
certificate or the password without recreating anything. The folder is 0755 and its
files 0644 (every service reads them as its own uid), inside SECRETS_DIR (0700: nobody
else on this machine reaches it). The bcrypt hash is kept while it still matches the
password, so a second run changes no file.
"""
from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import bcrypt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from scripts import certs, compose_info, envfile  # noqa: E402

MOUNT = "/run/stack-auth"  # where the services see the folder (docker-compose.auth.yml)
DEFAULT_USER = "stack"
USER_TLS = {"cert.pem": "STACK_TLS_CERT_FILE", "key.pem": "STACK_TLS_KEY_FILE", "ca.pem": "STACK_TLS_CA_FILE"}


def credentials(settings: dict[str, str]) -> tuple[str, str, str]:
    """(user, password, OTLP token) from the settings; a clear error when one is missing."""
    user = (settings.get("STACK_AUTH_USER") or DEFAULT_USER).strip()
    password, token = settings.get("STACK_AUTH_PASSWORD", ""), settings.get("STACK_OTLP_TOKEN", "")
    missing = [n for n, v in (("STACK_AUTH_PASSWORD", password), ("STACK_OTLP_TOKEN", token)) if not v]
    if missing:
        raise ValueError(f"{', '.join(missing)} empty in .env: `make up` generates them (scripts/init_env.py)")
    if ":" in user or not user.isprintable() or " " in user:
        raise ValueError(f"STACK_AUTH_USER={user!r}: a name without ':' or spaces")
    return user, password, token


def bcrypt_hash(password: str, previous: str | None) -> str:
    """`previous` while it still matches `password` (no change, no new salt), else a new hash."""
    if previous:
        try:
            if bcrypt.checkpw(password.encode(), previous.encode()):
                return previous
        except ValueError:
            pass
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def _previous_hash(folder: Path) -> str | None:
    try:
        line = (folder / "htpasswd").read_text().strip()
    except OSError:
        return None
    return line.partition(":")[2] or None


def web_config(user: str, hashed: str) -> str:
    # JSON is YAML: every value quoted whatever it holds.
    return "# Written by scripts/auth.py (STACK_AUTH): Prometheus' and Alertmanager's --web.config.file.\n" + json.dumps({
        "tls_server_config": {"cert_file": f"{MOUNT}/cert.pem", "key_file": f"{MOUNT}/key.pem"},
        "basic_auth_users": {user: hashed},
    }, indent=2) + "\n"


def client_config(user: str) -> str:
    return "# Written by scripts/auth.py (STACK_AUTH): the login and CA of the stack's own HTTP clients.\n" + json.dumps({
        "basic_auth": {"username": user, "password_file": f"{MOUNT}/password"},
        "tls_config": {"ca_file": f"{MOUNT}/ca.pem"},
    }, indent=2) + "\n"


def tls_sources(settings: dict[str, str], secrets: Path) -> dict[str, Path]:
    """Where cert.pem, key.pem and ca.pem come from: all three of yours, or `make certs`'s."""
    given = {name: settings.get(var, "").strip() for name, var in USER_TLS.items()}
    if any(given.values()):
        missing = [USER_TLS[n] for n, v in given.items() if not v]
        if missing:
            raise ValueError(f"your own certificate needs all of {', '.join(USER_TLS.values())}: "
                             f"{', '.join(missing)} not set")
        paths = {n: Path(v).expanduser() for n, v in given.items()}
        for name, path in paths.items():
            if not path.is_file():
                raise ValueError(f"{USER_TLS[name]}={path}: no such file")
        return paths
    tls = secrets / "tls"
    certs.ensure(tls, certs.names_for(settings, []))
    return {"cert.pem": tls / "server.pem", "key.pem": tls / "server-key.pem", "ca.pem": tls / "ca.pem"}


def render(settings: dict[str, str], secrets: Path) -> tuple[Path, list[str]]:
    """Writes the folder; returns it and the files that changed."""
    user, password, token = credentials(settings)
    folder = secrets / "auth"
    secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o755, exist_ok=True)
    os.chmod(folder, 0o755)
    hashed = bcrypt_hash(password, _previous_hash(folder))
    files = {name: path.read_text() for name, path in tls_sources(settings, secrets).items()}
    files.update({
        "web.yml": web_config(user, hashed),
        "htpasswd": f"{user}:{hashed}\n",
        "client.yml": client_config(user),
        "user": user,
        "password": password,
        "authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
        "otlp-token": token,
    })
    changed = []
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            envfile.write_atomic(path, text, mode=0o644)
            changed.append(name)
    return folder, changed


def main(argv: list[str]) -> int:
    settings = compose_info.settings()
    secrets = envfile.secrets_dir(REPO / ".env")
    try:
        folder, changed = render(settings, secrets)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if changed:
        print(f"STACK_AUTH: wrote {', '.join(changed)} in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
