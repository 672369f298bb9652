"""The capacity benchmark's setup (bench/): its load generator is the collector's own
release, and its ceiling collector is the stack's collector with discarding exporters."""
from __future__ import annotations

import yaml

from scripts.compose_info import load_compose_yaml
from scripts.validate import image_defaults
from tests.tooling import REPO

BENCH = REPO / "bench"


def test_telemetrygen_is_the_collectors_release():
    collector = image_defaults()["OTELCOL_IMAGE"].rsplit(":", 1)[1].removeprefix("v")
    generator = image_defaults()["TELEMETRYGEN_IMAGE"].rsplit(":", 1)[1].removeprefix("v")
    assert generator == collector, f"telemetrygen {generator}, collector {collector}"


def test_ceiling_is_the_stacks_collector_minus_the_backends():
    stack = yaml.safe_load((REPO / "otel-collector" / "config.yml").read_text())
    ceiling = yaml.safe_load((BENCH / "collector-ceiling.yml").read_text())
    assert ceiling["receivers"] == stack["receivers"], "the ceiling must receive as the stack does"
    assert ceiling["processors"]["memory_limiter"] == stack["processors"]["memory_limiter"]
    for name, pipe in ceiling["service"]["pipelines"].items():
        assert pipe["processors"] == ["memory_limiter"] and pipe["exporters"] == ["nop"], name
    overlay = load_compose_yaml(BENCH / "docker-compose.bench.yml")["services"]["collector-ceiling"]
    assert overlay["extends"] == {"file": "docker-compose.yml", "service": "otel-collector"}, (
        "the ceiling runs the stack collector's image, limits and hardening")
