#!/usr/bin/env python3
"""Your places: where your own additions live. The stack loads them last; they are
gitignored, so `git pull` and upgrades never touch them; `make up` creates the missing
ones (empty, or from the shipped example beside them); `make validate` checks them with
the real tools; the project's own tests never judge them (the test stacks mount empty
places over them).

    python3 scripts/places.py           create the missing places (make up runs it)
    python3 scripts/places.py --list    each place, what goes there, how a change applies

Standard library only: `make up` runs it before any virtual environment exists.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Place:
    path: str           # relative to the repository
    holds: str          # what goes there
    applies: str        # how a change takes effect
    example: str = ""   # a file place is created from this shipped file ("": empty folder)

    @property
    def is_dir(self) -> bool:
        return not Path(self.path).suffix


PLACES: tuple[Place, ...] = (
    Place("prometheus/local/targets", "scrape targets: YAML or JSON files of target groups "
          "(file discovery; a group's labels may set `job`)", "within 30 s, nothing to run"),
    Place("prometheus/local/rules", "alert and recording rules (*.yml)", "make reload"),
    Place("prometheus/local/scrape_configs", "whole scrape jobs, for what a target file cannot say "
          "(auth, a metrics path, relabelling)", "make reload"),
    Place("grafana/local/dashboards", "dashboards as JSON, in the Grafana folder \"Yours\"", "within 30 s, nothing to run"),
    Place("otel-collector/config.extras.yml", "the collector's receivers, processors, exporters and "
          "pipelines of your own, merged last", "make restart SERVICE=otel-collector",
          example="otel-collector/config.extras.example.yml"),
    Place("docker-compose.extras.yml", "compose's last file: services of your own, mounts, ports",
          "make up", example="docker-compose.extras.example.yml"),
)

# Where each place appears inside the containers that load it: the test stacks mount an
# empty place there, so a user's files never reach (or fail) the project's own tests.
# (service, path in the container, the place's folder or file under the repository)
MOUNTS: tuple[tuple[str, str, str], ...] = (
    ("prometheus", "/etc/prometheus/local", "prometheus/local"),
    ("grafana", "/etc/grafana/local", "grafana/local"),
    ("otel-collector", "/etc/otelcol/config.extras.yml", "otel-collector/config.extras.yml"),
)


def create(root: Path = REPO) -> list[str]:
    """Create the places that are missing under `root`; returns those created."""
    made = []
    for place in PLACES:
        target = root / place.path
        if target.exists():
            continue
        if place.is_dir:
            target.mkdir(parents=True, exist_ok=True)  # tiers side by side make them too
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / place.example, target)
        made.append(place.path)
    return made


def empty_copy(into: Path) -> dict[str, Path]:
    """Empty places under `into` (the shipped examples for file places), laid out as MOUNTS
    expects: {container path: host path} for each mount."""
    for place in PLACES:
        target = into / place.path
        if place.is_dir:
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / place.example, target)
    return {container: into / rel for _, container, rel in MOUNTS}


def main(argv: list[str]) -> int:
    if argv == ["--list"]:
        for place in PLACES:
            print(f"{place.path:<36} {place.holds}; applies: {place.applies}")
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path in create():
        print(f"created {path} (yours: gitignored, loaded last; scripts/places.py --list)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
