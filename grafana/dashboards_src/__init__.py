"""Dashboard sources: each module has UID and build() -> foundation SDK Dashboard builder."""
from . import alerts, demo_overview, stack_health

BOARDS = [demo_overview, stack_health, alerts]
