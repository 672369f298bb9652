#!/usr/bin/env python3
"""`make measurements`: docs/measurements.md from the figures the last runs left in build/
(never typed by hand): dated, with the machine and the images they came from.

    python3 scripts/measurements.py [--build build]   write docs/measurements.md and .json
    python3 scripts/measurements.py --check           the page is its data rendered, and every
                                                      figure written into a Markdown file as
                                                      <!-- figure:KEY -->VALUE<!-- /figure -->
                                                      is the measured one

Reads what is there: the tier table of the last `make test`/`make test-all`
(build/tiers.json), each stack tier's figures (build/<tier>-measurements.json), the
capacity smoke or sweep (build/bench-stack*.json), the soak (build/soak*.json), the
history's manifest, the backtest (build/backtest*.json) and the upgrade tier
(build/upgrade-tier.json). A section whose file is missing says so; nothing is invented.

Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Sections of the stack tiers' figures, in the order a reader wants them, and a title each.
SECTIONS = {
    "no_loss": "Nothing lost through an outage (sent against stored)",
    "restarts": "Restarts and down/up keep every store's data (written against found)",
    "forwarding": "The copy to your own backend",
    "own": "Your own things: the demo off, your places, containers, host",
    "upgrade": "Upgrades keep every store's data",
    "scale_out": "Scale-out profile",
    "bounds": "Bounds: the accelerated fill",
    "training": "Training ground",
    "history": "A month of history",
}
TIMINGS = ("compose_up_to_healthy_s", "fault_to_notification_s", "clear_to_resolved_s", "fault_to_email_s")
# Run data that is not a figure (the per-second memory samples, the settings, the plan).
SKIP = {"memory_samples", "samples", "series", "settings", "started", "not_started", "one_shot", "stand_ins",
        "images", "project", "compose_files", "peak_memory"}
# Whole files of figures: name -> section title.
FILES = {"bench-stack.json": "Capacity sweep (`make bench-stack`)",
         "bench-stack-smoke.json": "Capacity smoke (`make test-all`)",
         "soak.json": "Soak (`make soak`)", "soak-smoke.json": "Soak smoke (`make test-all`)",
         "backtest.json": "Backtest of the shipped rules (`make backtest`)",
         "upgrade-tier.json": "Upgrade tier (`make test-all TIERS=upgrade`)"}


# "image <pinned ref> (LOKI_IMAGE) is ..." in a note: the pin is written once, in the
# compose file (tests/config/test_single_source.py), so the page names the variable.
PINNED_IN_NOTE = re.compile(r"image \S+ \((\w+_IMAGE)\)")


def cell(value) -> str:
    if isinstance(value, dict) and {"sent", "stored"} <= set(value):
        return f"{value['sent']} sent, {value['stored']} stored, {value.get('lost', value['sent'] - value['stored'])} lost"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return PINNED_IN_NOTE.sub(r"the \1 image", str(value)).replace("|", "\\|")


def records(rows: list[dict]) -> list[str]:
    """A list of like records (a sweep's steps) as a table of what differs between them,
    after a line of what they share; nested values (per-container resources) left out."""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r)
            if not any(isinstance(r.get(k), (dict, list)) for r in rows)]
    varying = [k for k in keys if len({json.dumps(r.get(k), sort_keys=True) for r in rows}) > 1]
    same = [k for k in keys if k not in varying]
    out = [f"Every row: {'; '.join(f'{k} {cell(rows[0].get(k))}' for k in same)}.", ""] if same else []
    if varying:
        out += ["| " + " | ".join(varying) + " |", "|" + "---|" * len(varying),
                *("| " + " | ".join(cell(r.get(k)) for k in varying) + " |" for r in rows), ""]
    return out


def table(rows: list[tuple[str, object]], head: tuple[str, str] = ("what", "figure")) -> list[str]:
    out = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    after: list[str] = []
    for k, v in rows:
        if isinstance(v, list) and len(v) > 1 and all(isinstance(r, dict) for r in v):
            out.append(f"| {cell(k)} | {len(v)} rows, below |")
            after += [f"**{cell(k)}**", ""] + records(v)
        elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            out.append(f"| {cell(k)} | by {', '.join(map(str, v))}, below |")
            after += [f"**{cell(k)}**", ""] + records([{"": name, **x} for name, x in v.items()])
        else:
            out.append(f"| {cell(k)} | {cell(v)} |")
    return [*out, "", *after]


def machine() -> str:
    cores = os.cpu_count()
    try:
        mem = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))) / 2**20
    except (OSError, StopIteration):
        mem = 0
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True)
    return (f"{platform.system()} {platform.release()}, {cores} cores, {mem:.0f} GiB, Docker engine "
            f"{docker.stdout.strip() or 'unknown'}")


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def collect(build: Path) -> dict:
    """Everything the page shows, from build/: the data docs/measurements.json keeps."""
    data: dict = {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                  "tiers": {}, "images": {}, "sections": {}, "files": {}, "headline": {}}
    for kind in ("quick", "all"):
        if (t := load(build / f"tiers-{kind}.json")) is not None:
            data["tiers"][kind] = t
            data["headline"][f"make {'test' if kind == 'quick' else 'test-all'} minutes"] = round(t["wall_s"] / 60)
    sources = sorted(build.glob("*-measurements.json"))
    data["sources"] = [f"build/{f.name}" for f in sources]
    for f in sources:
        figures = load(f) or {}
        current = not f.name.startswith("upgrade-")  # the upgrade tier runs the previous releases on purpose
        if current:
            data["images"].update(figures.get("images") or {})
        for key, value in figures.items():
            if key in SECTIONS:
                data["sections"].setdefault(key, {}).update({k: v for k, v in value.items() if k not in SKIP})
                if current:
                    data["images"].update(value.get("images") or {})
            elif key in TIMINGS:
                data["sections"].setdefault("timings", {}).update(
                    {f"{key.removesuffix('_s').replace('_', ' ')}: {k}": v for k, v in value.items()}
                    if isinstance(value, dict) else {key.removesuffix("_s").replace("_", " "): value})
    for name in FILES:
        if (content := load(build / name)) is not None:
            data["files"][name] = {k: v for k, v in content.items() if k not in SKIP} if isinstance(content, dict) \
                else content
    return data


def render(data: dict) -> str:
    out = ["# Measurements", "",
           f"Generated by `make measurements` on {data['generated']} from the figures the last runs left",
           f"in `build/` (kept in `docs/measurements.json`), on {data['machine']}.",
           "Each section names the file it comes from; regenerate after a run to refresh it. Nothing here is",
           "typed by hand.", ""]
    out += ["## Test tiers (`build/tiers-quick.json`, `build/tiers-all.json`)", ""]
    for kind, t in data["tiers"].items():
        out += [f"`make {'test' if kind == 'quick' else 'test-all'}`: {t['lanes']} tiers at a time, "
                f"{t['wall_s']} s wall clock.", "", "| tier | result | seconds | tests |", "|---|---|---|---|"]
        out += [f"| {name} | {'ok' if r['ok'] else 'FAILED'} | {r['seconds']} | "
                f"{', '.join(f'{n} {k}' for k, n in r['counts'].items())} |" for name, r in t["tiers"].items()]
        out.append("")
    if not data["tiers"]:
        out += ["Not measured here: run `make test` or `make test-all` first.", ""]
    out += ["## Images", "", f"From {', '.join(f'`{f}`' for f in data.get('sources', [])) or 'no run'}.", ""]
    out += table(sorted(data["images"].items()), ("service", "image")) if data["images"] else ["Not recorded.", ""]
    if data["sections"].get("timings"):
        out += ["## Times (seconds)", ""] + table(sorted(data["sections"]["timings"].items()))
    for key, title in SECTIONS.items():
        rows = list((data["sections"].get(key) or {}).items())
        out += [f"## {title}", ""] + (table(rows) if rows else ["Not measured in the runs found.", ""])
    for name, title in FILES.items():
        content = data["files"].get(name)
        out += [f"## {title}", ""]
        if content is None:
            out += [f"Not measured here: no build/{name}.", ""]
            continue
        out += table(list(content.items() if isinstance(content, dict) else enumerate(content)))
    return "\n".join(out).rstrip() + "\n"


def docs_files() -> list[Path]:
    """The Markdown files figures are written into."""
    return sorted(REPO.glob("*.md")) + sorted((REPO / "docs").glob("*.md"))


FIGURE = re.compile(r"<!-- figure:([^>]+?) -->(.*?)<!-- /figure -->")


def drifted(data: dict, docs: list[Path]) -> list[str]:
    """Figures written into Markdown (`<!-- figure:KEY -->VALUE<!-- /figure -->`) that are
    not what the measurements say, and measured headline figures no page shows."""
    out, shown = [], set()
    for doc in docs:
        for key, value in FIGURE.findall(doc.read_text()):
            shown.add(key)
            want = data["headline"].get(key)
            if want is None or str(want) != value.strip():
                out.append(f"{doc.name}: {key} says {value.strip()!r}, the measurements {want!r}")
    out += [f"no page shows the measured figure {key!r} (<!-- figure:{key} -->)"
            for key in sorted(set(data["headline"]) - shown)]
    return out


def write_figures(data: dict, docs: list[Path]) -> None:
    """Each figure marker in the Markdown files set to its measured value."""
    for doc in docs:
        text = doc.read_text()
        new = FIGURE.sub(lambda m: f"<!-- figure:{m.group(1)} -->{data['headline'].get(m.group(1), m.group(2))}"
                                   "<!-- /figure -->", text)
        if new != text:
            doc.write_text(new)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=REPO / "build")
    ap.add_argument("--check", action="store_true",
                    help="fail if docs/measurements.md is not docs/measurements.json rendered, or a figure drifted")
    a = ap.parse_args(argv)
    page, store = REPO / "docs" / "measurements.md", REPO / "docs" / "measurements.json"
    if a.check:
        data = json.loads(store.read_text())
        problems = ([] if page.read_text() == render(data) else ["docs/measurements.md is not its data rendered"])
        problems += drifted(data, docs_files())
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    text = json.dumps(collect(a.build), indent=2, sort_keys=True) + "\n"
    data = json.loads(text)  # rendered as --check renders it: from the stored data
    store.write_text(text)
    page.write_text(render(data))
    write_figures(data, docs_files())
    print(f"wrote {page.relative_to(REPO)} and {store.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
