"""Settings from the environment (names documented in demo_app/README.md), one object
per role, validated at start by pydantic-settings: a bad value stops the start with a
message naming the variable.

Every variable has the DEMO_ prefix (DEMO_PORT, DEMO_FAULT_ERROR_RATIO, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "DEMO_"
KiB, MiB = 1024, 1024 * 1024
MAX_LATENCY_MS = 10_000
# Item ids: 32-bit signed, far beyond what the store holds, inside SQLite's 64-bit INTEGER
# and exact in every JSON client (a bound near 2**63 is not exactly a double: a client
# could not even tell whether it is in range).
MAX_ITEM_ID = 2**31 - 1


class ConfigError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


class RoleSettings(BaseSettings):
    """What every role has: where it listens, how it logs, its request limits."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", validate_default=True)

    # Loopback unless told otherwise: a service started on a laptop is not reachable from
    # the network. The image sets DEMO_HOST=0.0.0.0 (other containers must reach it).
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    request_logs: bool = True
    # Log records go to stdout (all of them) and over OTLP. True: over OTLP only those
    # written outside a trace or inside a sampled one (the cheap setting with a low
    # OTEL_TRACES_SAMPLER_ARG; demo_app/README.md, "Benchmark").
    otlp_logs_sampled_only: bool = False
    # Request limits (demo_app.request_limits): bodies above max_body_bytes get a 413 before they
    # are read whole; JSON nested deeper than max_json_depth a 400.
    max_body_bytes: int = Field(16 * KiB, ge=1 * KiB, le=16 * MiB)
    max_json_depth: int = Field(32, ge=2, le=512)
    # Connections served at once (uvicorn's limit_concurrency); more get a 503 at once.
    max_connections: int = Field(200, ge=1, le=10_000)
    # The benchmark's throughput tuning (demo_app/tuning.py). Off: the SDK's defaults, the
    # plain pattern this demo shows.
    tuned: bool = False
    # A second listener, for other machines (the stack's STACK_AUTH: README, "Share it with
    # your team"): TLS with this certificate and key, every request authenticated (the
    # stack's user and password, or the admin token as a bearer). `port` stays plain, for
    # the containers on the stack's own network.
    published_port: int | None = Field(None, ge=1, le=65535)
    tls_cert_file: str = ""
    tls_key_file: str = ""
    auth_user: str = "admin"
    auth_password_file: str = ""

    @model_validator(mode="after")
    def _published_needs_tls_and_a_password(self) -> "RoleSettings":
        if self.published_port is not None:
            missing = [PREFIX + n.upper() for n in ("tls_cert_file", "tls_key_file", "auth_password_file")
                       if not getattr(self, n)]
            if missing:
                raise ValueError(f"{PREFIX}PUBLISHED_PORT needs {', '.join(missing)}")
            for name in ("tls_cert_file", "tls_key_file", "auth_password_file"):
                if not Path(getattr(self, name)).is_file():
                    raise ValueError(f"{PREFIX}{name.upper()}={getattr(self, name)}: no such file")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


class ServiceSettings(RoleSettings):
    """shop and inventory: the fault switch, its token, readiness."""

    admin_token: SecretStr = SecretStr("")
    # Or the file that holds it (a compose secret, /run/secrets/...): read at start.
    admin_token_file: str = ""
    readiness_interval_s: float = Field(5.0, ge=0.05, le=3600)
    # The fault switch's state at start (the same bounds as POST /admin/faults).
    fault_error_ratio: float = Field(0.0, ge=0.0, le=1.0)
    fault_exception_ratio: float = Field(0.0, ge=0.0, le=1.0)
    fault_latency_ms: float = Field(0.0, ge=0, le=MAX_LATENCY_MS)
    fault_latency_jitter_ms: float = Field(0.0, ge=0, le=MAX_LATENCY_MS)
    fault_outage: bool = False


    @model_validator(mode="after")
    def _token_from_file(self) -> "ServiceSettings":
        if self.admin_token_file:
            try:
                self.admin_token = SecretStr(Path(self.admin_token_file).read_text().strip())
            except OSError as exc:
                raise ValueError(f"{PREFIX}ADMIN_TOKEN_FILE={self.admin_token_file}: {exc.strerror}") from None
        return self


class ShopSettings(ServiceSettings):
    port: int = Field(8080, ge=1, le=65535)
    inventory_url: str = Field("http://inventory:8081", pattern=r"^https?://[^\s/]+(/\S*)?$")
    downstream_timeout_s: float = Field(2.0, ge=0.05, le=60)

    @field_validator("inventory_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")


class InventorySettings(ServiceSettings):
    port: int = Field(8081, ge=1, le=65535)
    db_path: str = ":memory:"
    # The stock audit, a batch job in the background (exercises/06-batch-job).
    audit_interval_s: float = Field(300.0, ge=1, le=86400)


LOADGEN_ENDPOINTS = ("products", "product", "checkout")


class LoadgenSettings(RoleSettings):
    port: int = Field(8082, ge=1, le=65535)
    loadgen_target: str = Field("http://shop:8080", pattern=r"^https?://[^\s/]+(/\S*)?$")
    loadgen_rps: float = Field(5.0, ge=0.1, le=1000)
    # NAME=WEIGHT,... over LOADGEN_ENDPOINTS.
    loadgen_mix: str = "products=5,product=3,checkout=2"
    loadgen_summary_interval_s: float = Field(10.0, ge=1, le=3600)
    loadgen_concurrency: int = Field(20, ge=1, le=1000)
    # Up to this product id (7: one more than the store holds, so some answers are 404).
    loadgen_max_product_id: int = Field(7, ge=1, le=10_000)

    @field_validator("loadgen_mix")
    @classmethod
    def _mix(cls, raw: str) -> str:
        parse_mix(raw)
        return raw

    @property
    def mix(self) -> dict[str, float]:
        return parse_mix(self.loadgen_mix)


def parse_mix(raw: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in raw.split(","):
        name, sep, weight = part.strip().partition("=")
        if not sep or name not in LOADGEN_ENDPOINTS:
            raise ValueError(f"bad entry {part!r}; expected NAME=WEIGHT with NAME in {LOADGEN_ENDPOINTS}")
        try:
            w = float(weight)
        except ValueError:
            raise ValueError(f"weight {weight!r} is not a number") from None
        if not w >= 0:
            raise ValueError(f"weight for {name} is negative")
        mix[name] = w
    if sum(mix.values()) <= 0:
        raise ValueError("all weights are zero")
    return mix


class AlertSinkSettings(RoleSettings):
    port: int = Field(8090, ge=1, le=65535)
    # Alertmanager's webhook and Slack payloads: max_alerts (alertmanager.yml) bounds
    # them far below this.
    max_body_bytes: int = Field(256 * KiB, ge=1 * KiB, le=16 * MiB)
    max_connections: int = Field(32, ge=1, le=10_000)
    # The store (alertsink/store.py): SQLite on the alert-sink-data volume, so what was
    # received survives a restart; bounded by count and by bytes.
    store_path: str = "/var/lib/alert-sink/notifications.db"
    store_max_notifications: int = Field(1000, ge=1, le=1_000_000)
    store_max_bytes: int = Field(32 * MiB, ge=64 * KiB, le=1024 * MiB)
    # The SMTP listener (alertsink/smtp.py): what Alertmanager's email receiver sends.
    smtp_port: int = Field(2525, ge=0, le=65535)  # 0: no SMTP listener
    smtp_max_message_bytes: int = Field(256 * KiB, ge=1 * KiB, le=16 * MiB)
    smtp_max_recipients: int = Field(20, ge=1, le=1000)
    smtp_max_sessions: int = Field(16, ge=1, le=1000)
    # Runbooks (docs/runbooks, mounted read-only) served as HTML at /runbooks/<alert>.
    runbooks_dir: str = "/usr/share/runbooks"

    @model_validator(mode="after")
    def _store_holds_a_message(self) -> "AlertSinkSettings":
        # A store smaller than one message would keep only the newest and evict the rest.
        largest = max(self.max_body_bytes, self.smtp_max_message_bytes)
        if self.store_max_bytes < largest:
            raise ValueError(f"{PREFIX}STORE_MAX_BYTES={self.store_max_bytes} is below the largest message the sink "
                             f"accepts ({largest} bytes: {PREFIX}MAX_BODY_BYTES, {PREFIX}SMTP_MAX_MESSAGE_BYTES)")
        return self


ROLES: dict[str, type[RoleSettings]] = {
    "shop": ShopSettings,
    "inventory": InventorySettings,
    "loadgen": LoadgenSettings,
    "alert-sink": AlertSinkSettings,
}
DEFAULT_PORTS = {role: cls.model_fields["port"].default for role, cls in ROLES.items()}


def describe(exc: ValidationError, prefix: str = PREFIX) -> str:
    """One line per invalid variable: NAME='value': what is wrong."""
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a check across several variables names them itself
            lines.append(err["msg"].removeprefix("Value error, "))
            continue
        field = str(err["loc"][0])
        name = prefix + field.upper()
        shown = "(secret)" if "token" in field else repr(os.environ.get(name, err.get("input")))
        lines.append(f"{name}={shown}: {err['msg']}")
    return "; ".join(lines)


def load(role: str) -> RoleSettings:
    """The role's settings from the environment."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    # A DEMO_ variable no role knows is a typo (DEMO_FAULT_LATENCY for ..._LATENCY_MS):
    # say so rather than start with the default.
    known = {PREFIX + f.upper() for cls in ROLES.values() for f in cls.model_fields}
    unknown = sorted(k for k in os.environ if k.upper().startswith(PREFIX) and k.upper() not in known)
    if unknown:
        raise ConfigError(f"unknown variable(s) {', '.join(unknown)}; see demo_app/README.md")
    try:
        return ROLES[role]()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
