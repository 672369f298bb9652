#!/usr/bin/env python3
"""Generate grafana/dashboards/*.json from the Python sources in grafana/dashboards_src/.

    python3 grafana/generate.py          # (re)write the JSON files
    python3 grafana/generate.py --check  # exit 1 if the committed JSON differs (CI drift check)

Needs the pinned foundation SDK: pip install -r grafana/requirements.txt
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
# Import the sources relative to this file so the folder works wherever it is copied.
sys.path.insert(0, str(HERE))

from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402

from dashboards_src import BOARDS  # noqa: E402


def render() -> dict[str, str]:
    """File name -> JSON text, stable across runs (sorted keys, fixed indent, final newline)."""
    out = {}
    for module in BOARDS:
        board = module.build().build()
        out[f"{module.UID}.json"] = json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = ap.parse_args(argv)
    rendered = render()
    stale = sorted(
        [n for n, text in rendered.items()
         if not (OUT / n).is_file() or (OUT / n).read_text() != text]
        + [p.name for p in OUT.glob("*.json") if p.name not in rendered])
    if args.check:
        for name in stale:
            print(f"stale: grafana/dashboards/{name} (run: python3 grafana/generate.py)", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for p in OUT.glob("*.json"):
        if p.name not in rendered:  # a dashboard removed from the sources
            p.unlink()
    for name, text in rendered.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(rendered)} dashboards to {OUT} ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
