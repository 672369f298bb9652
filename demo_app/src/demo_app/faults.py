"""The fault switch: error ratio, exception ratio (a bug), added latency (fixed + uniform
jitter), outage."""

from __future__ import annotations

import asyncio
import random
import threading

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .settings import MAX_LATENCY_MS, ServiceSettings


class FaultUpdate(BaseModel):
    """Body of POST /admin/faults: any subset of the fields; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    # strict: "0.5" or true are not numbers here. Not nullable: a field is set or absent.
    error_ratio: float = Field(default=None, ge=0.0, le=1.0, strict=True)
    exception_ratio: float = Field(default=None, ge=0.0, le=1.0, strict=True)
    latency_ms: float = Field(default=None, ge=0, le=MAX_LATENCY_MS, strict=True)
    latency_jitter_ms: float = Field(default=None, ge=0, le=MAX_LATENCY_MS, strict=True)
    outage: StrictBool = None


class FaultState(BaseModel):
    error_ratio: float
    exception_ratio: float
    latency_ms: float
    latency_jitter_ms: float
    outage: bool


class FaultError(ValueError):
    """Invalid fault input; str() is a message fit for a 400 response."""


class InjectedFault(Exception):
    """Raised when the error-ratio fault fires."""


class SimulatedBug(RuntimeError):
    """Raised when the exception-ratio fault fires: an error no code path expects, as a bug
    would raise; the service logs it with its traceback."""


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self.error_ratio = 0.0
        self.exception_ratio = 0.0
        self.latency_ms = 0.0
        self.latency_jitter_ms = 0.0
        self.outage = False

    def state(self) -> dict:
        with self._lock:
            return {
                "error_ratio": self.error_ratio,
                "exception_ratio": self.exception_ratio,
                "latency_ms": self.latency_ms,
                "latency_jitter_ms": self.latency_jitter_ms,
                "outage": self.outage,
            }

    def update(self, update: FaultUpdate) -> dict:
        given = update.model_dump(exclude_unset=True)
        if not given:
            raise FaultError("body sets no field; expected any of: " + ", ".join(FaultUpdate.model_fields))
        with self._lock:
            for k, v in given.items():
                setattr(self, k, v)
        return self.state()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "Faults":
        """The fault switch as DEMO_FAULT_* set it at start (validated with the settings)."""
        faults = cls()
        faults.error_ratio = settings.fault_error_ratio
        faults.exception_ratio = settings.fault_exception_ratio
        faults.latency_ms = settings.fault_latency_ms
        faults.latency_jitter_ms = settings.fault_latency_jitter_ms
        faults.outage = settings.fault_outage
        return faults

    def clear(self) -> dict:
        with self._lock:
            self.error_ratio = 0.0
            self.exception_ratio = 0.0
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
        ratio = self.exception_ratio
        if ratio > 0 and random.random() < ratio:
            span.set_attribute("demo.fault.injected", True)
            raise SimulatedBug(f"unexpected error (exception_ratio={ratio})")
