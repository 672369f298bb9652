#!/usr/bin/env python3
"""Create .env from .env.example (first run) and fill empty secrets with random values;
then write every secret to its file under .secrets/, where compose takes it from
(scripts/envfile.py).

Idempotent: existing values are never changed, so `make up` can call it every time. A
setting .env.example gained since .env was made (an older checkout) is appended with its
default, so compose finds every variable it needs. .env is replaced atomically (a
temporary file renamed over it), owner-only. Prints where the Grafana password is.
"""
from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envfile  # noqa: E402

SECRETS = ("GRAFANA_ADMIN_PASSWORD", "DEMO_ADMIN_TOKEN", "STACK_AUTH_PASSWORD", "STACK_OTLP_TOKEN")


def fill(text: str) -> tuple[str, list[str]]:
    """Return `text` with every empty `NAME=` line of SECRETS given a generated value."""
    filled = []

    def repl(m: re.Match[str]) -> str:
        filled.append(m.group(1))
        return f"{m.group(1)}={secrets.token_urlsafe(24)}"

    pattern = re.compile(rf"^({'|'.join(SECRETS)})=[ \t]*$", re.MULTILINE)
    out = pattern.sub(repl, text)
    # A secret missing altogether (an old .env) is appended.
    for name in SECRETS:
        if not re.search(rf"^{name}=", out, re.MULTILINE):
            out += ("" if out.endswith("\n") or not out else "\n") + f"{name}={secrets.token_urlsafe(24)}\n"
            filled.append(name)
    return out, filled


def add_missing(text: str, example: str) -> tuple[str, list[str]]:
    """`text` with every NAME=value line of `example` whose NAME it lacks appended."""
    have = set(re.findall(r"^(\w+)=", text, re.MULTILINE))
    new = [(m.group(1), m.group(0)) for m in re.finditer(r"^(\w+)=.*$", example, re.MULTILINE)
           if m.group(1) not in have]
    if new:
        text += ("" if text.endswith("\n") or not text else "\n") + "\n".join(line for _, line in new) + "\n"
    return text, [name for name, _ in new]


def main(root: Path) -> int:
    env, example = root / ".env", root / ".env.example"
    created = not env.exists()
    text = example.read_text() if created else env.read_text()
    text, added = add_missing(text, example.read_text())
    out, filled = fill(text)
    if created or filled or added:
        envfile.write_atomic(env, out)
    try:
        envfile.write_secrets(envfile.parse(out), envfile.secrets_dir(env))
    except ValueError as e:  # a setting a secret file cannot be made from: its name, never its value
        print(f"error: {e}", file=sys.stderr)
        return 1
    if created:
        print(f"Created {env} from .env.example with generated {', '.join(filled)}.")
    else:
        if added:
            print(f"Added new settings to {env} with their defaults: {', '.join(added)}.")
        if filled:
            print(f"Filled empty {', '.join(filled)} in {env}.")
    print(f"Grafana login: GRAFANA_ADMIN_USER / GRAFANA_ADMIN_PASSWORD in {env}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
