"""The real validators on every config file (the same runs as `make validate`), plus
proof that each one rejects a broken file with its own message and the file's name.

Tools run from the pinned images or same-version twins (tests/tooling.py): a test skips
naming the missing image, or fails when REQUIRED_IMAGES lists it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import validate
from tests.tooling import REPO, require_image, run_tool

# The shipped configs only: a user's own files (scripts/places.py) are `make validate`'s.
CHECKS = validate.checks(REPO, user=False)


def test_every_component_has_a_validator():
    names = " ".join(c.name for c in CHECKS)
    for expected in ("docker compose config", "promtool check config prometheus/prometheus.yml",
                     "amtool check-config alertmanager/alertmanager.yml",
                     "otelcol validate", "jaeger validate", "loki -verify-config"):
        assert expected in names, f"make validate does not run {expected!r}"


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_validator_accepts_config(check):
    if check.var:
        require_image(check.var)  # skips naming the image, or fails when it is required
    status, detail = validate.run(check)  # the same run as `make validate`
    if status == "SKIP":
        pytest.skip(detail)
    assert status == "PASS", f"{check.name} rejected {', '.join(check.files)}:\n{detail}"


# ---- each validator must fail on a broken file -------------------------------------

def _copy(tmp_path: Path, folder: str) -> Path:
    shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path / folder


def _check(root: Path, prefix: str) -> validate.Check:
    return next(c for c in validate.checks(root, user=False) if c.name.startswith(prefix))


def _assert_rejected(p, *needles: str):
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"validator accepted a broken file:\n{out}"
    for n in needles:
        assert n in out, f"validator output does not mention {n!r}:\n{out}"


# (folder, file, text, broken text, check name prefix, what the tool's message must name)
BROKEN = {
    # A scrape job pointing at a syntactically invalid target.
    "promtool-bad-target": ("prometheus", "scrape_configs.yml", "targets: [alert-sink:8090]",
                            "targets: ['alert-sink:8090/metrics']",
                            "promtool check config prometheus/prometheus.yml", ["prometheus.yml"]),
    "promtool-unknown-key": ("prometheus", "prometheus.yml", "evaluation_interval: 15s",
                             "evaluation_interval: 15s\n  evaluation_intervall: 15s",
                             "promtool check config prometheus/prometheus.yml",
                             ["prometheus.yml", "evaluation_intervall"]),
    # A typo in a component name, the classic mistake after the 0.15x renames.
    "otelcol-unknown-component": ("otel-collector", "config.yml",
                                  "exporters: [otlp_grpc/jaeger, span_metrics]",
                                  "exporters: [otlp_grcp/jaeger, span_metrics]",
                                  "otelcol validate otel-collector/config.yml", ["otlp_grcp"]),
    # (An unknown storage *name* passes `jaeger validate`; it only fails at start-up.)
    "jaeger-unknown-key": ("jaeger", "jaeger.yml", "normalize_calls: true", "normalize_callz: true",
                           "jaeger validate", ["normalize_callz"]),
    "loki-unknown-key": ("loki", "loki.yml", "retention_enabled: true",
                         "retention_enabled: true\n  retention_enabld: true",
                         "loki -verify-config", ["retention_enabld"]),
}


@pytest.mark.parametrize("case", BROKEN)
def test_validator_rejects_broken_file(tmp_path, case):
    folder, name, text, broken, prefix, needles = BROKEN[case]
    d = _copy(tmp_path, folder)
    original = (d / name).read_text()
    assert text in original, f"{folder}/{name} no longer contains {text!r}: update this case"
    (d / name).write_text(original.replace(text, broken))
    c = _check(tmp_path, prefix)
    _assert_rejected(run_tool(c.var, c.entrypoint, *c.args, mounts=c.mounts, env=c.env), *needles)


def test_validate_script_reports_broken_file(tmp_path):
    """`make validate` (scripts/validate.py) exits non-zero and names file and tool."""
    if shutil.which("docker") is None or subprocess.run(
            ["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose not available")
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / "docker-compose.yml").write_text(
        (tmp_path / "docker-compose.yml").read_text().replace("mem_limit: 768m", "mem_limit: lots"))
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "validate.py"), "--root", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL  docker compose config" in p.stdout
    assert "file(s): docker-compose.yml" in p.stdout
    assert "mem_limit" in p.stdout, p.stdout
