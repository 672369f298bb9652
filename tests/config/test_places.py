"""Your places (scripts/places.py) and the optional parts: what is yours is gitignored,
created by `make up` without ever overwriting what is there, checked by `make validate`
with the real tools, and never read by the project's own checks; Prometheus hands out an
optional part's targets exactly while its compose profile is on."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import places, validate
from tests.config import alert_rules as ar
from tests.tooling import REPO, require_image


def test_every_place_is_yours_gitignored_and_its_readme_is_tracked():
    for place in places.PLACES:
        probe = place.path + ("/x.yml" if place.is_dir else "")
        ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO).returncode == 0
        assert ignored, f"{probe} is not gitignored: a user's file there would show in git status"
    tracked = subprocess.run(["git", "ls-files", "prometheus/local", "grafana/local"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked == ["grafana/local/README.md", "prometheus/local/README.md"], tracked
    for place in places.PLACES:
        if place.example:
            assert (REPO / place.example).is_file(), f"{place.path}'s example {place.example} is missing"


def test_make_up_creates_the_places_and_never_overwrites_yours(tmp_path):
    for place in places.PLACES:
        if place.example:
            (tmp_path / place.example).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / place.example, tmp_path / place.example)
    made = places.create(tmp_path)
    assert sorted(made) == sorted(p.path for p in places.PLACES)
    for place in places.PLACES:
        target = tmp_path / place.path
        assert target.is_dir() if place.is_dir else target.read_text() == (REPO / place.example).read_text()
    mine = tmp_path / "otel-collector" / "config.extras.yml"
    mine.write_text("# mine\n")
    (tmp_path / "prometheus/local/rules/mine.yml").write_text("groups: []\n")
    assert places.create(tmp_path) == [], "a second run created something again"
    assert mine.read_text() == "# mine\n" and (tmp_path / "prometheus/local/rules/mine.yml").exists()


BROKEN_RULE = "groups:\n  - name: mine\n    rules:\n      - alert: Mine\n        expr: up{job=\n"


@pytest.fixture
def prometheus_with_your_broken_rule(tmp_path) -> Path:
    shutil.copytree(REPO / "prometheus", tmp_path / "prometheus", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "prometheus/local/rules").mkdir(parents=True)
    (tmp_path / "prometheus/local/rules/mine.yml").write_text(BROKEN_RULE)
    (tmp_path / "prometheus/local/targets").mkdir()
    (tmp_path / "prometheus/local/targets/mine.yml").write_text("- targets: [myapp:8000]\n  labels: {job: mine}\n")
    return tmp_path


def _promtool_check_config(root: Path, user: bool) -> tuple[str, str]:
    check = next(c for c in validate.checks(root, user=user)
                 if c.name == "promtool check config prometheus/prometheus.yml")
    require_image(check.var)
    return validate.run(check, root)


def test_the_projects_checks_never_read_your_files_and_make_validate_does(prometheus_with_your_broken_rule):
    root = prometheus_with_your_broken_rule
    status, detail = _promtool_check_config(root, user=False)
    assert status == "PASS", f"the project's own check read the user's broken rule:\n{detail}"
    status, detail = _promtool_check_config(root, user=True)
    assert status == "FAIL" and "mine.yml" in detail, f"make validate let a broken rule of yours pass:\n{detail}"
    sd = [c for c in validate.checks(root, user=True) if c.name.startswith("promtool check service-discovery")]
    assert sd and sd[0].files == ["prometheus/local/targets/mine.yml"], [c.name for c in validate.checks(root)]
    assert all(f.parent == ar.RULES_DIR for f in ar.rule_files()), "the coverage tests read another folder"


def _entrypoint_hands_out(tmp_path: Path, profiles: str) -> set[str]:
    """Runs prometheus/entrypoint.sh in the Prometheus image (with `--version`, so it stops
    after preparing) and lists the target files it left for Prometheus."""
    data = tmp_path / f"data-{profiles or 'none'}"
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    ref = require_image("PROMETHEUS_IMAGE")
    p = subprocess.run(["docker", "run", "--rm", "--network", "none", "-e", f"COMPOSE_PROFILES={profiles}",
                        "-v", f"{REPO / 'prometheus'}:/etc/prometheus:ro", "-v", f"{data}:/prometheus",
                        "--entrypoint", "/bin/sh", ref, "/etc/prometheus/entrypoint.sh", "--version"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "prometheus, version" in p.stdout + p.stderr, p.stdout + p.stderr
    return {f.name for f in (data / "sd").iterdir()}


@pytest.mark.parametrize("profiles, expected", [
    ("demo", {"demo.yml"}),
    ("", set()),
    ("containers,host", {"containers.yml", "host.yml"}),
    ("*", {"demo.yml", "containers.yml", "host.yml"}),
    ("demoX,xdemo", set()),
])
def test_prometheus_scrapes_an_optional_part_exactly_while_its_profile_is_on(tmp_path, profiles, expected):
    assert _entrypoint_hands_out(tmp_path, profiles) == expected
