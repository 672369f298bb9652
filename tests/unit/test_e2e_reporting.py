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
