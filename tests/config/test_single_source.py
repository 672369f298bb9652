"""Each fact is kept once. An image version lives only in docker-compose.yml (the
${X_IMAGE:-...} defaults): twins, tests, docs and the Makefile read it from there. A
published port lives only in docker-compose.yml too: code that reaches the stack asks
compose which host port it got (scripts/compose_info.py)."""
from __future__ import annotations

import re
import subprocess

import pytest

from scripts.validate import image_defaults
from tests.tooling import REPO

# Files that must state a pinned version, and why.
MAY_STATE_VERSION = {
    "docker-compose.yml": "the one place",
    "docker-compose.scale.yml": "the one place of the scale-out profile's images (Thanos)",
    "otel-collector/builder-config.yaml": "a build manifest names its module versions "
                                          "(test_collector_build.py keeps them equal to the pin)",
    "bench/docker-compose.bench.yml": "the one place of telemetrygen's pin (the collector's release)",
    "tests/upgrade/docker-compose.previous.yml": "the one place of the previous releases the upgrade tier comes from",
}
# A Python package's pin that happens to carry the same number (a web framework's).
PYTHON_PIN = re.compile(r"^[A-Za-z0-9_.\-]+(\[[\w,]+\])?==\S+")
# Captured data: component metric names as a pinned version exposed them.
DATA = ("tests/metric_catalog_data/",)


def tracked_text_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.split()
    return [f for f in out if (REPO / f).is_file() and not f.endswith((".png", ".json", ".lock"))
            and not f.startswith(DATA)]


def tag(ref: str) -> str | None:
    """The tag of an image reference (a registry's :port before the last / is not one)."""
    name = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def versions() -> dict[str, str]:
    """X_IMAGE -> the version in its pinned tag (v1.2.3 -> 1.2.3); unpinned ones are left
    to test_every_image_is_pinned, which names them."""
    return {var: t.removeprefix("v") for var, ref in image_defaults().items()
            if var != "DEMO_IMAGE" and (t := tag(ref)) and t != "latest"}


def test_every_image_is_pinned():
    unpinned = [f"{var}={ref}" for var, ref in image_defaults().items()
                if var != "DEMO_IMAGE" and tag(ref) in (None, "latest")]
    assert not unpinned, f"image default without a version tag (pin it in its compose file): {unpinned}"


@pytest.mark.parametrize("var", sorted(versions()))
def test_a_pinned_version_is_written_once(var):
    version = versions()[var]
    pattern = re.compile(rf"(?<![\w.]){re.escape(version)}(?![\w.])")
    offenders = []
    for f in tracked_text_files():
        if f in MAY_STATE_VERSION:
            continue
        text = (REPO / f).read_text(errors="replace")
        offenders += [f"{f}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if pattern.search(line) and not PYTHON_PIN.match(line)]
    assert not offenders, (f"{var}'s version {version} is restated (read it from docker-compose.yml "
                           f"instead): {offenders}")


def published_ports() -> set[int]:
    import yaml

    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    return {int(str(p).split(":")[-2]) for s in services.values() for p in s.get("ports") or []}


def test_code_reaching_the_stack_asks_compose_for_the_port():
    """No code that reaches the running stack (scripts, drills, the benchmark, the e2e
    tests, the Makefile) types a published port after localhost or 127.0.0.1. (Inside a
    container, wget http://127.0.0.1:9090 is the image's own port, not a published one.)"""
    code = [f for f in tracked_text_files() if f == "Makefile" or (
        f.endswith(".py") and f.startswith(("scripts/", "drills/", "bench/", "tests/e2e/")))]
    offenders = []
    for f in code:
        for n, line in enumerate((REPO / f).read_text().splitlines(), 1):
            for port in re.findall(r"(?:localhost|127\.0\.0\.1):(\d{4,5})\b", line):
                if int(port) in published_ports():
                    offenders.append(f"{f}:{n}: {line.strip()[:100]}")
    assert not offenders, "a published port typed in code: " + "; ".join(offenders)


# The upgrade tier comes from the minor release before each current pin.
PREVIOUS = {"PROMETHEUS_PREVIOUS_IMAGE": "PROMETHEUS_IMAGE", "ALERTMANAGER_PREVIOUS_IMAGE": "ALERTMANAGER_IMAGE",
            "JAEGER_PREVIOUS_IMAGE": "JAEGER_IMAGE", "OTELCOL_PREVIOUS_IMAGE": "OTELCOL_IMAGE"}


@pytest.mark.parametrize("previous, current", PREVIOUS.items())
def test_each_previous_release_is_one_minor_behind_its_pin(previous, current):
    """Bumping a pin without moving its previous release (or the reverse) fails here."""
    now, before = (tuple(int(x) for x in versions()[v].split(".")) for v in (current, previous))
    assert before[0] == now[0] and before[1] == now[1] - 1, (
        f"{previous} is {versions()[previous]}, not the minor release before {current}'s {versions()[current]}")
    repo = {v: image_defaults()[v].rsplit(":", 1)[0] for v in (current, previous)}
    assert repo[previous] == repo[current], f"{previous} names another image: {repo}"
