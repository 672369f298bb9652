"""The stand-in for a team's own OTLP backend (tests/forward/docker-compose.remote-otlp.yml):
the settings a user would put into .env to forward to it, and what it accepted, read from
its debug exporter's lines. Used by the forwarding tier and by the own-things tier (where
Loki is absent, container log lines are counted there)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.tooling import REPO

if TYPE_CHECKING:
    from tests.e2e.stack import Stack

COMPOSE_FILE = REPO / "tests" / "forward" / "docker-compose.remote-otlp.yml"


def forward_settings(token: str) -> dict[str, str]:
    """What a user would put into .env to forward to remote-otlp (plain gRPC inside the
    compose network, a bearer token)."""
    return {
        "FORWARD_OTLP_ENDPOINT": "remote-otlp:4317",
        "FORWARD_OTLP_INSECURE": "true",
        "FORWARD_OTLP_HEADERS": f"authorization=Bearer%20{token}",
        "REMOTE_OTLP_TOKEN": token,   # what remote-otlp asks for
    }


def printed(stack: "Stack") -> str:
    """Everything remote-otlp's debug exporter printed (each accepted item, detailed)."""
    return stack.compose("logs", "--no-color", "--no-log-prefix", "remote-otlp", timeout=120).stdout


@dataclass
class LogRecord:
    body: str
    resource: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


_ATTR = re.compile(r"^\s*-> ([\w.\-]+): Str\((.*)\)\s*$")


def log_records(text: str) -> list[LogRecord]:
    """The log records in the debug exporter's detailed output, each with its resource's
    attributes and its own (string ones)."""
    records: list[LogRecord] = []
    resource: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if re.search(r"(^|\s)ResourceLog #\d+$", stripped):  # the first line may carry the log's prefix
            resource, section = {}, ""
        elif stripped == "Resource attributes:":
            section = "resource"
        elif re.search(r"(^|\s)LogRecord #\d+$", stripped):
            section = "record"
        elif stripped.startswith("Body: Str(") and stripped.endswith(")"):
            records.append(LogRecord(stripped[len("Body: Str("):-1], dict(resource)))
        elif stripped == "Attributes:" and section == "record":
            section = "record attributes"
        elif m := _ATTR.match(line):
            if section == "resource":
                resource[m.group(1)] = m.group(2)
            elif section == "record attributes" and records:
                records[-1].attributes[m.group(1)] = m.group(2)
        elif stripped.startswith(("ScopeLogs #", "Trace ID", "Span #", "Metric #")):
            section = ""
    return records
