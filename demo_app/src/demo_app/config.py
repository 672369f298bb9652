"""Settings from environment variables (names documented in demo_app/README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_PORTS = {"shop": 8080, "inventory": 8081, "loadgen": 8082, "alert-sink": 8090}
ROLES = tuple(DEFAULT_PORTS)


class ConfigError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def env_float(name: str, default: float, lo: float | None = None, hi: float | None = None) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name}={raw!r} must be within [{lo}, {hi}]")
    return value


def env_int(name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name}={raw!r} must be within [{lo}, {hi}]")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")


@dataclass
class Settings:
    role: str
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "INFO"
    admin_token: str = ""
    inventory_url: str = "http://inventory:8081"
    db_path: str = ":memory:"
    downstream_timeout_s: float = 2.0
    readiness_interval_s: float = 5.0
    request_logs: bool = True
    fault_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, role: str) -> "Settings":
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return cls(
            role=role,
            host=_env("DEMO_HOST", "0.0.0.0"),
            port=env_int("DEMO_PORT", DEFAULT_PORTS[role], 1, 65535),
            log_level=_env("DEMO_LOG_LEVEL", "INFO").upper(),
            admin_token=os.environ.get("DEMO_ADMIN_TOKEN", "").strip(),
            inventory_url=_env("DEMO_INVENTORY_URL", "http://inventory:8081").rstrip("/"),
            db_path=_env("DEMO_DB_PATH", ":memory:"),
            downstream_timeout_s=env_float("DEMO_DOWNSTREAM_TIMEOUT_S", 2.0, 0.05, 60),
            readiness_interval_s=env_float("DEMO_READINESS_INTERVAL_S", 5.0, 0.1, 3600),
            request_logs=env_bool("DEMO_REQUEST_LOGS", True),
            fault_env={
                k: v
                for k, v in os.environ.items()
                if k.startswith("DEMO_FAULT_") and v.strip() != ""
            },
        )
