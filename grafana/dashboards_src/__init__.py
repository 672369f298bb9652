"""Dashboard sources: each module has UID and build() -> foundation SDK Dashboard builder."""
from . import alerts, containers, demo_overview, host, services, stack_health

BOARDS = [services, demo_overview, containers, host, stack_health, alerts]
