"""The stack's settings file (.env) and the secret files compose hands to containers.

One reader and one writer for .env (init_env.py, grafana_password.py, the drills and the
tests all use these), and the secrets: every secret in .env is also written to a file of
its own under SECRETS_DIR (default .secrets/ beside .env), which compose mounts at
/run/secrets/<name>. A file, not an environment variable: it shows neither in
`docker inspect` nor in `docker compose config`, and a read-only container can take it
(compose can hand a read-only container a secret only as a file).

Standard library only (runs before the project's virtual environment exists).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

# .env variable -> the secret's name in docker-compose.yml (its file under SECRETS_DIR).
SECRET_FILES = {
    "GRAFANA_ADMIN_PASSWORD": "grafana_admin_password",
    "DEMO_ADMIN_TOKEN": "demo_admin_token",
    "SLACK_WEBHOOK_URL": "slack_webhook_url",
    "SMTP_AUTH_PASSWORD": "smtp_auth_password",
    "FORWARD_OTLP_HEADERS": "forward_otlp_headers",
    "PROMETHEUS_REMOTE_WRITE_PASSWORD": "prometheus_remote_write_password",
    # The stack shared (STACK_AUTH): the login of every published port but Grafana's, and
    # the token an app's OTLP exporter sends.
    "STACK_AUTH_PASSWORD": "stack_auth_password",
    "STACK_OTLP_TOKEN": "stack_otlp_token",
}
# Other settings that hold a credential (a test's stand-in backend asks for a token),
# known by their names' endings.
CREDENTIAL_NAME = re.compile(r"_(TOKEN|PASSWORD)$")
LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def parse(text: str) -> dict[str, str]:
    """NAME=value lines (quotes around a value stripped); comments and blanks ignored."""
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1)] = value
    return out


def read(path: Path) -> dict[str, str]:
    return parse(path.read_text()) if path.exists() else {}


HIDDEN = "<hidden>"
# Query parameters that carry a credential in a URL (?api_key=..., &sig=...).
SECRET_PARAM = re.compile(r"(?i)^(.*(key|token|secret|password|passwd|pwd|auth|signature|sig|code))$")


def masked_url(value: str) -> str:
    """A URL (or host:port) with its password and credential-like query values hidden:
    https://user:pass@host/?api_key=x -> https://user:<hidden>@host/?api_key=<hidden>."""
    parts = urlsplit(value) if "://" in value else None
    if parts is None or not parts.netloc:
        return value
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{host}" if sep else f"{HIDDEN}@{host}"
    query = "&".join(f"{k}={HIDDEN}" if SECRET_PARAM.match(k) and v else (f"{k}={v}" if sep else k)
                     for k, sep, v in (item.partition("=") for item in parts.query.split("&") if item))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def masked(values: dict[str, str]) -> dict[str, str]:
    """`values` with every secret's and credential's value hidden, and credentials inside
    URLs too: what may be printed or written under build/."""
    return {k: HIDDEN if v and (k in SECRET_FILES or CREDENTIAL_NAME.search(k)) else masked_url(v)
            for k, v in values.items()}


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Writes `text` to a temporary file beside `path` and renames it over `path`: a
    reader sees the old file or the new one, never half of one; `mode` from the start."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_value(path: Path, name: str, value: str) -> None:
    """Sets NAME=value in the .env file at `path` (appended when absent), atomically."""
    text = path.read_text() if path.exists() else ""
    line = f"{name}={value}"
    text, n = re.subn(rf"^{name}=.*$", lambda _: line, text, flags=re.MULTILINE)
    if n == 0:
        text += ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    write_atomic(path, text)


def secrets_dir(env_file: Path) -> Path:
    """Where the secret files go: SECRETS_DIR from the environment, else from .env itself
    (as compose reads it: relative to the folder of .env), else .secrets/ beside .env."""
    value = os.environ.get("SECRETS_DIR") or read(env_file).get("SECRETS_DIR")
    if not value:
        return env_file.parent / ".secrets"
    path = Path(value).expanduser()
    return path if path.is_absolute() else env_file.parent / path


def otlp_headers_yaml(value: str) -> str:
    """`key=value,key2=value2` (the format of OTEL_EXPORTER_OTLP_HEADERS, values
    percent-encoded) as the YAML map the collector's `headers: ${file:...}` reads; JSON is
    YAML, and quotes every key and value whatever it holds."""
    pairs = {}
    items = [p.strip() for p in value.split(",") if p.strip()]
    for n, item in enumerate(items, 1):
        key, sep, val = item.partition("=")
        # Never the item itself in the message: a mistyped header is usually a token.
        if not sep or not key.strip():
            raise ValueError(f"FORWARD_OTLP_HEADERS in .env: item {n} of {len(items)} is not key=value "
                             "(its text is not shown: it may hold a secret); e.g. x-api-key=<key>")
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", key.strip()):
            raise ValueError(f"FORWARD_OTLP_HEADERS in .env: item {n} of {len(items)} has a header name with "
                             "characters a header cannot have (its text is not shown: it may hold a secret)")
        pairs[key.strip()] = unquote(val.strip())
    return json.dumps(pairs) + "\n"


# Secrets whose file holds another form than the .env value.
RENDER = {"FORWARD_OTLP_HEADERS": otlp_headers_yaml}


def write_secrets(values: dict[str, str], directory: Path) -> list[str]:
    """Writes every secret of `values` to its file in `directory` (mode 0700), each file
    readable by the container's user (0644: containers run as their own uids). Returns
    the names written."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for var, name in SECRET_FILES.items():
        value = values.get(var, "")
        write_atomic(directory / name, RENDER.get(var, str)(value), mode=0o644)
    return list(SECRET_FILES.values())
