"""Run the stack's real tools (promtool, amtool, otelcol, jaeger, loki) from the images
the compose file pins, or from same-version local builds selected by the *_IMAGE env vars.

A test that cannot get an image skips and names it; an image listed in REQUIRED_IMAGES
(comma-separated env var names, set by CI for the images it built) fails instead.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
_IMAGE_VAR = re.compile(r"\$\{(\w+_IMAGE):-([^}]+)\}")


@functools.cache
def image_defaults() -> dict[str, str]:
    """Pinned default of every `${X_IMAGE:-default}` in docker-compose.yml."""
    return dict(_IMAGE_VAR.findall(COMPOSE_FILE.read_text()))


def image(var: str) -> str:
    """The image a compose service would run: the env var if set, else the pinned default."""
    return os.environ.get(var) or image_defaults()[var]


def required_images() -> set[str]:
    return {v.strip() for v in os.environ.get("REQUIRED_IMAGES", "").split(",") if v.strip()}


@functools.cache
def docker_works() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


@functools.cache
def _obtain(ref: str) -> bool:
    """True when the image is local or can be pulled (tried once per session)."""
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0:
        return True
    return subprocess.run(["docker", "pull", "-q", ref], capture_output=True).returncode == 0


def require_image(var: str) -> str:
    """Return the image reference for `var`, or skip (fail when required) naming it."""
    ref = image(var)
    if not docker_works():
        reason = f"no Docker engine to run {ref} ({var})"
    elif _obtain(ref):
        return ref
    else:
        reason = f"image {ref} ({var}) is neither local nor pullable"
    if var in required_images():
        pytest.fail(f"{reason}, but REQUIRED_IMAGES lists {var}")
    pytest.skip(reason)


def run_tool(var: str, entrypoint: str, *args: str, mounts: dict[Path, str] | None = None,
             timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --entrypoint ENTRYPOINT IMAGE ARGS` with read-only bind mounts and
    no network. Returns the finished process (stdout and stderr as text)."""
    ref = require_image(var)
    cmd = ["docker", "run", "--rm", "--network", "none", "--entrypoint", entrypoint]
    for host, container in (mounts or {}).items():
        cmd += ["-v", f"{Path(host).resolve()}:{container}:ro"]
    return subprocess.run([*cmd, ref, *args], capture_output=True, text=True, timeout=timeout)
