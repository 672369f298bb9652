"""The tier runner beside a twins build that is still running (.ci/run): a tier starts once
the images it needs are listed in twins/images.env, the tiers that can start go first, a
failed build fails the tiers it leaves without images, and each tier runs with images.env
as it is when the tier starts."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests import tiers

REPO = tiers.REPO

STACK = "PROMETHEUS_IMAGE=twin/prometheus:v1\nREQUIRED_IMAGES=PROMETHEUS_IMAGE\n"
WITH_THANOS = "PROMETHEUS_IMAGE=twin/prometheus:v1\nTHANOS_IMAGE=twin/thanos:v2\nREQUIRED_IMAGES=PROMETHEUS_IMAGE,THANOS_IMAGE\n"


@pytest.fixture
def build(tmp_path, monkeypatch):
    env_file = tmp_path / "images.env"
    env_file.write_text(STACK)
    monkeypatch.setattr(tiers.TwinsBuilding, "IMAGES_ENV", env_file)
    monkeypatch.setattr(tiers.TwinsBuilding, "POLL_S", 0.02)
    monkeypatch.setattr(tiers, "OUT", tmp_path / "tiers")
    # The runner lays images.env over the environment: start from one without a run's images
    # (CI sources twins/images.env before the tiers).
    for var in [v for v in os.environ if v.endswith("_IMAGE") or v == "REQUIRED_IMAGES"]:
        monkeypatch.delenv(var)
    started: list[tuple[str, dict]] = []

    def fake_pytest(cmd, cwd, env, stdout, stderr):  # stands in for the tier's pytest process
        started.append((env["TEST_TIER"], env))
        stdout.write("===== 1 passed in 0.01s =====\n")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(tiers.subprocess, "run", fake_pytest)
    return tiers.TwinsBuilding(tmp_path / "twins-late.done"), env_file, started


def tier(name, est_s, twins=(), **kw):
    return tiers.Tier(name, (f"tests/{name}",), "", est_s=est_s, twins=twins, **kw)


def test_a_tier_whose_twin_is_not_built_yet_lets_the_others_go_first_and_starts_once_it_is(build):
    twins, env_file, started = build
    forward, e2e = tier("forward", 1000, ("THANOS_IMAGE",)), tier("e2e", 700)

    def thanos_arrives():  # the build lists Thanos once the first tier has started (or after 5 s)
        deadline = time.monotonic() + 5
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        env_file.write_text(WITH_THANOS)

    threading.Thread(target=thanos_arrives).start()
    outcomes = tiers.run([forward, e2e], 1, [], twins)
    assert [name for name, _ in started] == ["e2e", "forward"]
    assert all(o.ok for o in outcomes)
    # each tier runs with images.env as it is when it starts: forward sees Thanos required
    env_of = dict(started)
    assert "THANOS_IMAGE" not in env_of["e2e"]["REQUIRED_IMAGES"]
    assert env_of["forward"]["THANOS_IMAGE"] == "twin/thanos:v2"
    assert env_of["forward"]["REQUIRED_IMAGES"].split(",") == ["PROMETHEUS_IMAGE", "THANOS_IMAGE"]


def test_with_nothing_else_to_run_a_lane_waits_for_the_twin(build):
    twins, env_file, started = build
    threading.Timer(0.3, lambda: env_file.write_text(WITH_THANOS)).start()
    t0 = time.monotonic()
    [outcome] = tiers.run([tier("scale", 500, ("THANOS_IMAGE",))], 2, [], twins)
    assert outcome.ok and [name for name, _ in started] == ["scale"]
    assert time.monotonic() - t0 >= 0.3


def test_when_no_tier_is_ready_a_lane_takes_the_longest_and_waits(build):
    twins, env_file, started = build
    threading.Timer(0.3, lambda: env_file.write_text(WITH_THANOS)).start()
    tiers.run([tier("scale", 500, ("THANOS_IMAGE",)), tier("forward", 1000, ("THANOS_IMAGE",))], 1, [], twins)
    assert [name for name, _ in started] == ["forward", "scale"]


def test_a_build_that_ended_without_a_tiers_image_fails_that_tier(build):
    twins, _, started = build
    twins.done_file.write_text("0 300\n")  # succeeded, but images.env has no Thanos
    [outcome] = tiers.run([tier("scale", 500, ("THANOS_IMAGE",))], 1, [], twins)
    assert not outcome.ok and not started
    assert "without THANOS_IMAGE" in outcome.summary["final"]


def test_a_build_that_died_without_a_word_ends_the_wait(build, tmp_path):
    _, _, started = build
    dead = subprocess.Popen(["true"])
    dead.wait()
    twins = tiers.TwinsBuilding(tmp_path / "never-written.done", dead.pid)
    # should the runner miss the death, this ends the wait anyway (and the test fails)
    backstop = threading.Timer(10, lambda: twins.done_file.write_text("99 0\n"))
    backstop.daemon = True
    backstop.start()
    try:
        [outcome] = tiers.run([tier("upgrade", 600, tiers.PREVIOUS_TWINS)], 1, [], twins)
    finally:
        backstop.cancel()
    assert not outcome.ok and not started and "exit code -1" in outcome.summary["final"]


def test_required_images_only_grows(build, monkeypatch):
    twins, env_file, started = build
    monkeypatch.setenv("REQUIRED_IMAGES", "PROMETHEUS_IMAGE,DEMO_IMAGE")
    env_file.write_text("PROMETHEUS_IMAGE=twin/prometheus:v1\nREQUIRED_IMAGES=\n")  # a build that just began
    tiers.run([tier("e2e", 700)], 1, [], twins)
    assert dict(started)["e2e"]["REQUIRED_IMAGES"].split(",") == ["PROMETHEUS_IMAGE", "DEMO_IMAGE"]


def test_a_solo_tier_starts_alone_for_its_seconds(build):
    _, _, started = build
    at: dict[str, float] = {}
    original = tiers.subprocess.run

    def timed(cmd, cwd, env, stdout, stderr):
        at[env["TEST_TIER"]] = time.monotonic()
        return original(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr)

    tiers.subprocess.run = timed
    try:
        tiers.run([tier("chaos", 1400, solo_s=1), tier("e2e", 700), tier("own", 1300)], 3, [], None)
    finally:
        tiers.subprocess.run = original
    assert at["chaos"] <= min(at["e2e"], at["own"]) - 0.9, at


def test_a_failed_build_fails_the_tiers_it_left_without_images_and_runs_the_rest(build):
    twins, _, started = build
    twins.done_file.write_text("1 412\n")
    outcomes = {o.tier.name: o for o in tiers.run(
        [tier("upgrade", 600, tiers.PREVIOUS_TWINS), tier("e2e", 700)], 2, [], twins)}
    assert [name for name, _ in started] == ["e2e"]
    assert outcomes["e2e"].ok and not outcomes["upgrade"].ok
    assert "exit code 1" in outcomes["upgrade"].summary["final"]
    assert "twins-late.log" in outcomes["upgrade"].summary["final"]
    assert "PROMETHEUS_PREVIOUS_IMAGE" in outcomes["upgrade"].summary["final"]


def test_a_tier_that_needs_every_twin_waits_for_the_build_to_end(build):
    twins, env_file, started = build
    env_file.write_text(WITH_THANOS)
    config = tier("config", 90, all_twins=True)
    assert not twins.ready(config)
    threading.Timer(0.3, lambda: twins.done_file.write_text("0 900\n")).start()
    [outcome] = tiers.run([config], 1, [], twins)
    assert outcome.ok and [name for name, _ in started] == ["config"]


def test_without_a_build_beside_them_tiers_run_longest_first_with_the_environment_as_it_is(build, monkeypatch):
    _, _, started = build
    monkeypatch.setenv("THANOS_IMAGE", "mine/thanos:1")
    outcomes = tiers.run([tier("a", 10, ("THANOS_IMAGE",)), tier("b", 20)], 1, [], None)
    assert [name for name, _ in started] == ["b", "a"] and all(o.ok for o in outcomes)
    assert dict(started)["a"]["THANOS_IMAGE"] == "mine/thanos:1"


def test_a_tier_the_runner_cannot_start_is_reported_failed_not_lost(build, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OSError("no such file: pytest")
    monkeypatch.setattr(tiers.subprocess, "run", broken)
    outcomes = tiers.run([tier("a", 10), tier("b", 20)], 2, [], None)
    assert sorted(o.tier.name for o in outcomes) == ["a", "b"]
    assert not any(o.ok for o in outcomes)
    assert all("OSError" in o.summary["final"] for o in outcomes)


def test_the_cpu_busy_share_is_read_and_reported():
    busy0, total0 = tiers.cpu_times()
    sum(i * i for i in range(300_000))
    busy1, total1 = tiers.cpu_times()
    assert total1 > total0 and busy1 > busy0
    assert "CPU busy 42 %" in tiers.report([], 10.0, 0.42)


def test_each_tier_that_uses_a_later_twin_waits_for_it():
    """A tier whose files name a twin CI builds beside the tiers must list it in Tier.twins
    (or wait for every twin), or in CI it could start before its image exists."""
    for t in tiers.TIERS:
        text = "".join(f.read_text(errors="replace") for path in t.paths for f in (REPO / path).rglob("*")
                       if f.suffix in (".py", ".yml", ".yaml") and f.is_file() and f != Path(__file__))
        used = {v for v in tiers.LATER_TWINS if v in text}
        assert t.all_twins or used <= set(t.twins), f"{t.name} uses {sorted(used - set(t.twins))}, not in its twins"
    assert {v for t in tiers.TIERS for v in t.twins} <= set(tiers.LATER_TWINS)


def test_the_later_twins_are_names_twins_build_sh_builds_and_lists():
    build_sh = (REPO / "twins" / "build.sh").read_text()
    names = re.search(r"^ALL=\(([^)]*)\)", build_sh, re.M).group(1).split()
    listed = set(re.findall(r"([a-z-]+):([A-Z_]+_IMAGE):", build_sh))  # write_env's name:VAR:tag
    for var in tiers.LATER_TWINS:
        assert tiers.build_name(var) in names, var
        assert (tiers.build_name(var), var) in listed, var
