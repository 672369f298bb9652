"""The minimal collector distribution (otel-collector/builder-config.yaml) holds exactly
the components the collector configs use, at the release docker-compose.yml pins."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from scripts.validate import image_defaults
from tests.tooling import REPO, require_image

MANIFEST = REPO / "otel-collector" / "builder-config.yaml"
# Every collector config of the project: the stack's (with forwarding, the extras and their
# worked examples), the scale-out tiers', the benchmark's, the forwarding tests' remote.
# Each is validated (merged as compose runs it) by tests/config/test_stack_validators.py.
OTEL = REPO / "otel-collector"
CONFIGS = sorted({*OTEL.glob("config*.yml"), *OTEL.glob("forward.*.yml"), *OTEL.glob("examples/*.yml"), OTEL / "edge.yml",
                  *(REPO / "bench").glob("*collector*.yml"), *(REPO / "tests" / "forward").glob("*collector*.yml")})
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
# Components the manifest holds at an older release, and why (its comment says the same).
BEHIND = {"loadbalancingexporter": ("v0.161.0", "the module proxy here serves no later version")}


def used_components() -> set[str]:
    names: set[str] = set()
    for path in CONFIGS:
        cfg = yaml.safe_load(path.read_text()) or {}  # the extras ship as comments only
        for kind in KINDS:
            names |= {key.split("/")[0] for key in cfg.get(kind) or {}}
    return names


def test_manifest_is_at_the_pinned_release():
    pinned = image_defaults()["OTELCOL_IMAGE"].rsplit(":", 1)[1]
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["dist"]["version"] == pinned, f"dist.version is not the pinned collector {pinned}"
    modules = [m["gomod"] for kind in (*KINDS, "providers") for m in manifest.get(kind) or []]
    behind = {gomod.split()[0].rsplit("/", 1)[1]: gomod.split()[1] for gomod in modules
              if gomod.split()[0].rsplit("/", 1)[1] in BEHIND}
    assert behind == {name: v for name, (v, _) in BEHIND.items()}, behind
    modules = [gomod for gomod in modules if gomod.split()[0].rsplit("/", 1)[1] not in BEHIND]
    versions = {gomod.split()[1] for gomod in modules + [manifest["telemetry"]["gomod"]]}
    zero_x = {v for v in versions if v.startswith("v0.")}
    assert zero_x == {f"v{pinned}"}, f"components at {sorted(zero_x)}, the pinned release is {pinned}"
    # The stable (v1.x) modules of a release: one version for all of them.
    assert len(versions - zero_x) <= 1, f"providers at several versions: {sorted(versions - zero_x)}"


def test_built_distribution_holds_exactly_the_components_the_configs_use():
    ref = require_image("OTELCOL_IMAGE")
    title = subprocess.run(["docker", "image", "inspect", "-f",
                            '{{index .Config.Labels "org.opencontainers.image.title"}}', ref],
                           capture_output=True, text=True).stdout
    if "minimal ocb build" not in title:
        pytest.skip(f"{ref} is not built from {MANIFEST.name} (make twins builds it): the upstream "
                    "contrib image holds every component")
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "components"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    built = set(re.findall(r"^\s*- name: ([a-z_]+)\s*$", out, re.MULTILINE))
    used = used_components()
    assert used <= built, f"configs use components the distribution lacks: {sorted(used - built)}"
    assert built <= used, (f"components built but used by no config ({[p.name for p in CONFIGS]}): "
                           f"{sorted(built - used)}; drop them from {MANIFEST.name}")

