"""The fault switch: error ratio, added latency (fixed + uniform jitter), outage."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

MAX_LATENCY_MS = 10_000
ENV_NAMES = {
    "DEMO_FAULT_ERROR_RATIO": "error_ratio",
    "DEMO_FAULT_LATENCY_MS": "latency_ms",
    "DEMO_FAULT_LATENCY_JITTER_MS": "latency_jitter_ms",
    "DEMO_FAULT_OUTAGE": "outage",
}


class FaultUpdate(BaseModel):
    """Body of POST /admin/faults: any subset of the fields; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")
    # strict: "0.5" or true are not numbers here
    error_ratio: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)
    latency_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS, strict=True)
    latency_jitter_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS, strict=True)
    outage: StrictBool | None = None


class FaultError(ValueError):
    """Invalid fault input; str() is a message fit for a 400 response."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []


def _describe(exc: ValidationError) -> tuple[str, list[dict]]:
    errors = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"]) or "body"
        errors.append({"field": field, "message": e["msg"]})
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors


class InjectedFault(Exception):
    """Raised when the error-ratio fault fires."""


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self.error_ratio = 0.0
        self.latency_ms = 0.0
        self.latency_jitter_ms = 0.0
        self.outage = False

    def state(self) -> dict:
        with self._lock:
            return {
                "error_ratio": self.error_ratio,
                "latency_ms": self.latency_ms,
                "latency_jitter_ms": self.latency_jitter_ms,
                "outage": self.outage,
            }

    def update(self, body: object) -> dict:
        if not isinstance(body, dict):
            raise FaultError("body must be a JSON object with any of: " + ", ".join(FaultUpdate.model_fields))
        try:
            upd = FaultUpdate.model_validate(body)
        except ValidationError as exc:
            message, errors = _describe(exc)
            raise FaultError(message, errors) from None
        given = upd.model_dump(exclude_none=True)
        if not given:
            raise FaultError("body sets no field; expected any of: " + ", ".join(FaultUpdate.model_fields))
        with self._lock:
            for k, v in given.items():
                setattr(self, k, v)
        return self.state()

    def update_from_env(self, env: Mapping[str, str]) -> dict:
        """DEMO_FAULT_* variables, validated like the API (a bad value stops the start)."""
        body: dict[str, object] = {}
        for name, raw in env.items():
            if name not in ENV_NAMES:
                raise FaultError(f"unknown fault variable {name}; expected one of {', '.join(ENV_NAMES)}")
            field = ENV_NAMES[name]
            raw = raw.strip()
            if field == "outage":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise FaultError(f"{name}={raw!r}: expected true or false")
                body[field] = raw.lower() in ("true", "1")
            else:
                try:
                    body[field] = float(raw)
                except ValueError:
                    raise FaultError(f"{name}={raw!r}: not a number") from None
        if not body:
            return self.state()
        try:
            return self.update(body)
        except FaultError as exc:
            raise FaultError(f"invalid DEMO_FAULT_* setting: {exc}") from None

    def clear(self) -> dict:
        with self._lock:
            self.error_ratio = 0.0
            self.latency_ms = 0.0
            self.latency_jitter_ms = 0.0
            self.outage = False
        return self.state()

    def delay_s(self) -> float:
        if self.latency_ms <= 0 and self.latency_jitter_ms <= 0:
            return 0.0
        return (self.latency_ms + random.uniform(0, self.latency_jitter_ms)) / 1000.0

    async def apply(self, span) -> None:
        """Called at the start of every /api request."""
        delay = self.delay_s()
        if delay > 0:
            span.add_event("fault.latency", {"demo.fault.delay_ms": round(delay * 1000, 3)})
            await asyncio.sleep(delay)
        ratio = self.error_ratio
        if ratio > 0 and random.random() < ratio:
            span.set_attribute("demo.fault.injected", True)
            raise InjectedFault(f"injected fault (error_ratio={ratio})")
