"""poll_until: telemetry arrives when it arrives; a test waits for it, up to a generous bound."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class Timeout(AssertionError):
    pass


def poll_until(fn: Callable[[], T], timeout: float, message: str, interval: float = 1.0) -> T:
    """Call fn until it returns something truthy (returned) or `timeout` seconds pass,
    then fail with `message` and the last result or error seen. Exceptions from fn (a
    connection refused, a failed assert inside fn) count as "not yet"."""
    deadline = time.monotonic() + timeout
    last = "fn never ran"
    while True:
        try:
            result = fn()
            if result:
                return result
            last = f"last result: {result!r}"
        except Exception as exc:  # noqa: BLE001 - reported below, with the message
            last = f"last error: {type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout:.0f} s waiting until {message} ({last[:800]})")
        time.sleep(interval)
