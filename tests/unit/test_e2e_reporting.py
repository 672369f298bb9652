"""What the e2e tiers print and keep under build/: each container's peak memory against
its limit (tests/e2e/docker_stats.py), and the session's settings with credentials hidden
(scripts/envfile.py masked)."""
from __future__ import annotations

from scripts import envfile
from tests.e2e.docker_stats import MemorySampler


def test_a_container_that_exited_between_ps_and_stats_is_not_reported() -> None:
    sampler = MemorySampler("obs-e2e")
    sampler.record("alert-sink", "70.5MiB / 192MiB")
    sampler.record("alert-sink", "64MiB / 192MiB")
    sampler.record("volume-init", "0B / 0B")  # what `docker stats` prints for an exited container
    assert sampler.report() == {"alert-sink": {"peak_mib": 70.5, "limit_mib": 192.0}}
    assert not sampler.errors


def test_an_unreadable_usage_is_an_error_not_a_figure() -> None:
    sampler = MemorySampler("obs-e2e")
    sampler.record("shop", "-- / --")
    assert sampler.report() == {}
    assert sampler.errors and sampler.errors[0].startswith("shop: ")


def test_recorded_settings_hide_every_secret_and_credential() -> None:
    token = "h6kcAHZa4KE2XRbsLgVLnWYD"
    settings = {"FORWARD_OTLP_ENDPOINT": "remote-otlp:4317",
                "FORWARD_OTLP_HEADERS": f"authorization=Bearer%20{token}",
                "REMOTE_OTLP_TOKEN": token, "DEMO_ADMIN_TOKEN": "t", "SMTP_AUTH_PASSWORD": "p",
                "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "PROMETHEUS_REMOTE_WRITE_PASSWORD": ""}
    shown = envfile.masked(settings)
    assert token not in repr(shown)
    assert shown["FORWARD_OTLP_ENDPOINT"] == "remote-otlp:4317"
    assert {k for k, v in shown.items() if v == "<hidden>"} == {
        "FORWARD_OTLP_HEADERS", "REMOTE_OTLP_TOKEN", "DEMO_ADMIN_TOKEN", "SMTP_AUTH_PASSWORD", "SLACK_WEBHOOK_URL"}
    assert shown["PROMETHEUS_REMOTE_WRITE_PASSWORD"] == "", "an unset secret stays visibly unset"


def test_credentials_inside_urls_are_hidden_wherever_settings_are_recorded() -> None:
    shown = envfile.masked({
        "FORWARD_OTLP_ENDPOINT": "https://tenant:sk-live-9aZ@otlp.example.com:4318",
        "PROMETHEUS_REMOTE_WRITE_URL": "https://mimir.example.com/api/v1/push?api_key=sk-live-9aZ&region=eu",
        "FORWARD_OTLP_TRACES_ENDPOINT": "https://sk-live-9aZ@traces.example.com",
        "STACK_HOST": "localhost", "FORWARD_OTLP_LOGS_ENDPOINT": "otel-gateway.internal:4317"})
    assert "sk-live" not in repr(shown), shown
    assert shown["FORWARD_OTLP_ENDPOINT"] == "https://tenant:<hidden>@otlp.example.com:4318"
    assert shown["PROMETHEUS_REMOTE_WRITE_URL"] == "https://mimir.example.com/api/v1/push?api_key=<hidden>&region=eu"
    assert shown["FORWARD_OTLP_TRACES_ENDPOINT"] == "https://<hidden>@traces.example.com"
    assert shown["STACK_HOST"] == "localhost" and shown["FORWARD_OTLP_LOGS_ENDPOINT"] == "otel-gateway.internal:4317"


PRINTED = """\
2026-12-07T08:00:00.000Z\tinfo\tLogs\t{"otelcol.component.id": "debug", "resource logs": 2, "log records": 3}
2026-12-07T08:00:00.000Z\tinfo\tResourceLog #0
Resource SchemaURL: 
Resource attributes:
     -> container.name: Str(own-probe-1)
     -> service.namespace: Str(myproject)
ScopeLogs #0
ScopeLogs SchemaURL: 
InstrumentationScope  
LogRecord #0
ObservedTimestamp: 2026-12-07 08:00:00.1 +0000 UTC
Timestamp: 2026-12-07 08:00:00 +0000 UTC
SeverityText: 
SeverityNumber: Unspecified(0)
Body: Str(own-probe 1)
Attributes:
     -> log.iostream: Str(stdout)
Trace ID: 
Span ID: 
Flags: 0
LogRecord #1
Body: Str(own-probe 2)
Attributes:
     -> log.iostream: Str(stderr)
ResourceLog #1
Resource attributes:
     -> service.name: Str(shop)
ScopeLogs #0
LogRecord #0
Body: Str(GET /api/products 200)
\t{"otelcol.component.id": "debug"}
"""


def test_the_remote_copys_log_records_are_read_with_their_resource() -> None:
    from tests.e2e.remote import log_records

    got = [(r.body, r.resource, r.attributes) for r in log_records(PRINTED)]
    assert got == [
        ("own-probe 1", {"container.name": "own-probe-1", "service.namespace": "myproject"}, {"log.iostream": "stdout"}),
        ("own-probe 2", {"container.name": "own-probe-1", "service.namespace": "myproject"}, {"log.iostream": "stderr"}),
        ("GET /api/products 200", {"service.name": "shop"}, {}),
    ]


# The stand-in's own printed lines, had they been collected (the loop CONTAINER_LOGS_EXCLUDE
# prevents): bodies that look like the printout itself still read as records of their own.
LOOPED = """\
2026-12-07T08:00:01.000Z\tinfo\tResourceLog #0
Resource attributes:
     -> container.name: Str(obs-own-remote-otlp-1)
     -> compose.service: Str(remote-otlp)
ScopeLogs #0
LogRecord #0
Body: Str(2026-12-07T08:00:00.000Z\tinfo\tResourceLog #0)
LogRecord #1
Body: Str(     -> container.name: Str(own-probe-1))
"""


def test_a_looped_line_of_the_stand_in_reads_as_its_own_record() -> None:
    from tests.e2e.remote import log_records

    got = [(r.body, r.resource.get("compose.service")) for r in log_records(PRINTED + LOOPED)]
    assert got == [("own-probe 1", None), ("own-probe 2", None), ("GET /api/products 200", None),
                   ("2026-12-07T08:00:00.000Z\tinfo\tResourceLog #0", "remote-otlp"),
                   ("     -> container.name: Str(own-probe-1)", "remote-otlp")]
