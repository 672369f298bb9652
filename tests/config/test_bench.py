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
    assert ceiling["receivers"]["otlp"] == stack["receivers"]["otlp"], "the ceiling must receive OTLP as the stack does"
    assert ceiling["processors"]["memory_limiter"] == stack["processors"]["memory_limiter"]
    for name, pipe in ceiling["service"]["pipelines"].items():
        assert pipe["processors"] == ["memory_limiter"] and pipe["exporters"] == ["nop"], name
    overlay = load_compose_yaml(BENCH / "docker-compose.bench.yml")["services"]["collector-ceiling"]
    assert overlay["extends"] == {"file": "docker-compose.yml", "service": "otel-collector"}, (
        "the ceiling runs the stack collector's image, limits and hardening")


# ---- the benchmark's verdicts (bench/steps.py judge()), on made-up steps ----------------

def _step(**kw):
    from bench.steps import Step

    base = dict(signal="traces", target="end-to-end", rate=1000, duration_s=10.0, generated=10_000,
                window_s=10.0, offered_ratio=1.0, accepted=10_000, sent=10_000, arrived=10_000)
    return Step(**{**base, **kw})


def test_a_step_is_lossless_only_when_every_count_is_equal():
    from bench.steps import judge

    assert judge(_step()).sustained
    for broken, why in ((dict(arrived=9_999), "returned by the backend"),
                        (dict(arrived=10_001), "returned by the backend"),  # a duplicate is not an arrival
                        (dict(generated=10_002), "the generator counted"),
                        (dict(drained=False, queued_after=512), "did not drain"),
                        (dict(dropped=1), "dropped"), (dict(failed=8), "failed")):
        s = judge(_step(**broken))
        assert not s.lossless and not s.sustained and why in s.note, (broken, s.note)


def test_generator_limited_only_when_the_generator_shows_it():
    from bench.steps import judge

    short = judge(_step(generated=8_000, accepted=8_000, arrived=8_000, offered_ratio=0.8))
    assert short.lossless and short.generator_limited and not short.sustained and "generator" in short.note
    pushed_back = judge(_step(generated=8_000, accepted=7_000, refused=1_000, arrived=7_000, offered_ratio=0.8))
    assert not pushed_back.generator_limited and not pushed_back.lossless, pushed_back.note
    busy = judge(_step(resources={"telemetrygen": {"cpu_cores": 0.97}}, generator_cpus=1.0))
    assert busy.generator_limited and busy.sustained  # offered the rate, but at its CPU bound
