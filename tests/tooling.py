"""Run the stack's real tools (promtool, amtool, otelcol, jaeger, loki) from the images
the compose file pins, or from same-version local builds selected by the *_IMAGE env vars.

The image plumbing is `make validate`'s (scripts/validate.py); this adds the pytest side:
a test that cannot get an image skips and names it; an image listed in REQUIRED_IMAGES
(comma-separated env var names, set by CI for the images it built) fails instead.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scripts.validate import (REPO, Check, docker_cmd, docker_works, image,  # noqa: F401
                              image_available, image_defaults, missing_image, required_images)

COMPOSE_FILE = REPO / "docker-compose.yml"


def require_image(var: str) -> str:
    """Return the image reference for `var`, or skip (fail when required) naming it."""
    reason = missing_image(var)
    if reason is None:
        return image(var)
    if var in required_images():
        pytest.fail(f"{reason}, but REQUIRED_IMAGES lists {var}")
    pytest.skip(reason)


def run_tool(var: str, entrypoint: str, *args: str, mounts: dict[Path, str] | None = None,
             timeout: int = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --entrypoint ENTRYPOINT IMAGE ARGS` with read-only bind mounts and
    no network. Returns the finished process (stdout and stderr as text)."""
    ref = require_image(var)
    cmd = docker_cmd(Check(entrypoint, var, entrypoint, list(args), dict(mounts or {}), env=dict(env or {})), ref)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
