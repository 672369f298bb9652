"""A twin is the version its upstream pin names: the image a twin variable points at (when
twins/images.env selects one) says, in its own version label, the version of the pin it
stands for; Jaeger's and telemetrygen's twins, older releases, name the pin they stand in for. So bumping a
pin without rebuilding its twin (make twins) fails here, not somewhere in an e2e run."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from scripts.validate import docker_works, image_defaults

# Twins built from an older release than their pin (twins/README.md): label io.twins.stands-in-for.
STANDS_IN = {"JAEGER_IMAGE", "JAEGER_PREVIOUS_IMAGE", "TELEMETRYGEN_IMAGE"}


def twin_vars() -> list[str]:
    """The twin variables in effect (the demo's twin is the demo itself, built from source)."""
    return sorted(v for v in image_defaults() if v != "DEMO_IMAGE" and os.environ.get(v, "").startswith("twin/"))


def labels(ref: str) -> dict[str, str]:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", ref],
                         capture_output=True, text=True)
    assert out.returncode == 0, f"{ref}: {out.stderr.strip()}"
    return json.loads(out.stdout) or {}


@pytest.mark.parametrize("var", twin_vars() or ["(no twin selected)"])
def test_a_twin_is_the_version_of_its_pin(var):
    if var not in image_defaults():
        pytest.skip("no *_IMAGE points at a twin here (twins/images.env not sourced)")
    if not docker_works():
        pytest.skip("no Docker engine to inspect the twins")
    pin = image_defaults()[var]
    got = labels(os.environ[var])
    if var in STANDS_IN:
        assert got.get("io.twins.stands-in-for") == pin, f"{os.environ[var]} stands in for {got.get('io.twins.stands-in-for')}, the pin is {pin}"
    else:
        want = pin.rsplit(":", 1)[1].removeprefix("v")
        assert got.get("org.opencontainers.image.version", "").removeprefix("v") == want, (
            f"{var}: the twin {os.environ[var]} is version {got.get('org.opencontainers.image.version')}, "
            f"the pin {pin}: rebuild it (make twins)")
