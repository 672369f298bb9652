#!/usr/bin/env python3
"""`make upgrade`: move the running stack to the images its compose files now pin (after a
`git pull`, or a new *_IMAGE in .env), keeping every store's data, and checking before it
stops anything.

    python3 scripts/upgrade.py [--timeout S] [--report build/upgrade.json] [COMPOSE...]

1. What changes: each running service whose image differs from the one compose resolves
   now (nothing changes: nothing is done).
2. Before stopping anything: the new images are here (pulled where missing), and every
   config passes its validator run from the new images (`make validate`). A failure stops
   here, with the stack untouched.
3. What each store holds now: Prometheus' oldest sample and series, Jaeger's recent traces
   by id, Alertmanager's silences by id, the alert sink's notifications by id, Loki's
   streams, the collector's queues.
4. `docker compose up --wait`: the changed services are recreated on the same volumes.
   A service that does not come up healthy: its last log lines, and how to go back (the
   previous images, as settings for .env; a failed start leaves the volumes as they were).
5. The same inventory again: a table of what each store kept, and build/upgrade.json.

COMPOSE: the compose command of the stack (default `docker compose`, as `make` runs it).
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

try:
    from scripts import compose_info
except ImportError:  # run as a script: scripts/ is on the path
    import compose_info

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "build" / "upgrade.json"


def present_images(compose: list[str]) -> tuple[dict[str, str], set[str]]:
    """service -> the image its container (running or stopped) was started from; and the
    services running now."""
    rows = compose_info.ps(compose)
    inspected = compose_info.inspect(rows)
    images = {r["Service"]: inspected[r["ID"]]["Config"]["Image"] for r in rows if r.get("ID") in inspected}
    return images, {r["Service"] for r in rows if r.get("State") == "running"}


def wanted_images(compose: list[str]) -> dict[str, str]:
    out = subprocess.run([*compose, "config", "--format", "json"], capture_output=True, text=True, cwd=REPO,
                         timeout=120, check=True).stdout
    return {name: svc["image"] for name, svc in json.loads(out)["services"].items() if svc.get("image")}


def image_here(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def _read(compose: list[str], url: str):
    try:
        return json.loads(compose_info.fetch_inside(compose, url))
    except (RuntimeError, ValueError, subprocess.SubprocessError):
        return None


class Unreadable(RuntimeError):
    pass


def inventory(compose: list[str], services: set[str], known: dict[str, dict] | None = None) -> dict[str, dict]:
    """What each store holds, as identities that can be found again (read from inside the
    project's network, through Prometheus' container: nothing needs to be published).
    Before the upgrade (`known` None) a store that cannot be read raises Unreadable: a
    report of nothing would say "kept". After it, `known` is what was there before, and
    Jaeger's traces are looked up by id."""
    inv: dict[str, dict] = {}

    def _get(url: str, store: str):
        got = _read(compose, url)
        if got is None and known is None:
            raise Unreadable(f"{store} does not answer {url.split('?')[0]}")
        return got

    if "prometheus" in services:
        q = _get("http://prometheus:9090/api/v1/query?" + urlencode(
            {"query": "prometheus_tsdb_lowest_timestamp_seconds"}), "prometheus")
        series = _get("http://prometheus:9090/api/v1/status/tsdb", "prometheus")
        if q and q["data"]["result"]:
            inv["prometheus"] = {"oldest sample (unix s)": int(float(q["data"]["result"][0]["value"][1])),
                                 "series in the head": (series or {}).get("data", {}).get("headStats", {}).get("numSeries")}
    if "jaeger" in services:
        names = (_get("http://jaeger:16686/api/services", "jaeger") or {}).get("data") or []
        traces = set()
        if known is None:  # a sample: each service's newest traces
            for name in names:
                found = _get("http://jaeger:16686/api/traces?" + urlencode({"service": name, "limit": 20}), "jaeger")
                traces |= {t["traceID"] for t in (found or {}).get("data") or []}
        else:  # each of them again, by id (newer traces come first in a search)
            traces = {t for t in known.get("jaeger", {}).get("traces", [])
                      if (_get(f"http://jaeger:16686/api/traces/{t}", "jaeger") or {}).get("data")}
        inv["jaeger"] = {"services": sorted(names), "traces": sorted(traces)}
    if "alertmanager" in services:
        silences = _get("http://alertmanager:9093/api/v2/silences", "alertmanager") or []
        inv["alertmanager"] = {"silences": sorted(s["id"] for s in silences if s["status"]["state"] != "expired")}
    if "alert-sink" in services:
        body = _get("http://alert-sink:8090/api/notifications?limit=1000", "alert-sink") or {}
        # The Watchdog's repeats are trimmed by design (the sink's store): the rest are kept.
        inv["alert-sink"] = {"notifications": sorted(n["id"] for n in body.get("notifications", [])
                                                      if n.get("receiver") != "watchdog")}
    if "loki" in services:
        labels = _get("http://loki:3100/loki/api/v1/label/service_name/values?since=720h", "loki") or {}
        inv["loki"] = {"services": sorted(labels.get("data") or [])}
    return inv


def kept(before: dict[str, dict], after: dict[str, dict]) -> list[dict]:
    """One row per item of the inventory: what was there, what is there now, whether kept."""
    rows = []
    for store, items in before.items():
        for item, was in items.items():
            now = after.get(store, {}).get(item)
            if isinstance(was, list):
                ok = set(was) <= set(now or [])
                rows.append({"store": store, "item": item, "before": len(was),
                             "after": len(set(was) & set(now or [])), "kept": ok})
            elif item == "oldest sample (unix s)":
                ok = now is not None and now <= was
                rows.append({"store": store, "item": item, "before": was, "after": now, "kept": ok})
            else:
                rows.append({"store": store, "item": item, "before": was, "after": now, "kept": now is not None})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'store':<14}{'item':<28}{'before':>12}{'after':>12}  kept"]
    lines += [f"{r['store']:<14}{r['item']:<28}{r['before']!s:>12}{r['after']!s:>12}  {'yes' if r['kept'] else 'NO'}"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=int, default=300, help="seconds to wait for every service to be healthy")
    ap.add_argument("--report", type=Path, default=REPORT)
    ap.add_argument("compose", nargs=argparse.REMAINDER,
                    help="the compose command and its options (default: docker compose)")
    a = ap.parse_args(argv)
    compose = a.compose or ["docker", "compose"]
    if compose_info.auth_mode(compose_info.settings())[0]:
        # Its inventory reads the stores over plain HTTP from inside the network.
        print("make upgrade does not run on the shared stack yet (STACK_AUTH is on): set BIND_ADDRESS=127.0.0.1 "
              "and STACK_AUTH=off in .env, `make up`, `make upgrade`, then share it again.", file=sys.stderr)
        return 2

    (present, running), wanted = present_images(compose), wanted_images(compose)
    if not running:
        print("The stack is not running: `make up` starts it on the pinned images (nothing to upgrade).")
        return 1
    changes = {svc: (present[svc], wanted[svc]) for svc in present if svc in wanted and present[svc] != wanted[svc]}
    if not changes:
        print("Every running service is on its pinned image: nothing to upgrade.")
        return 0
    print("To upgrade:")
    for svc, (old, new) in sorted(changes.items()):
        print(f"  {svc:<16} {old}  ->  {new}")

    for ref in sorted({new for _, new in changes.values()}):
        if not image_here(ref) and subprocess.run(["docker", "pull", ref]).returncode != 0:
            print(f"\n{ref} is neither here nor pullable: nothing was stopped. Build or pull it first "
                  "(on a machine without a registry: `make twins`).", file=sys.stderr)
            return 1
    print("\nValidating every config with the new images (make validate) before stopping anything ...", flush=True)
    if subprocess.run([sys.executable, str(REPO / "scripts" / "validate.py")], cwd=REPO).returncode != 0:
        print("\nA config does not pass with the new images: nothing was stopped. Fix it (the validator said "
              "what), or stay on the running images.", file=sys.stderr)
        return 1

    try:
        before = inventory(compose, running)
    except Unreadable as exc:
        print(f"\n{exc}: what it holds cannot be counted before the upgrade, so nothing was stopped. "
              "`make ps` and `make logs SERVICE=...` say why; upgrade once it answers.", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    # The services this project has containers of, no others (--no-deps: not a dependency
    # that never ran either): a part never started, or whose image is missing here, stays so.
    up = subprocess.run([*compose, "up", "-d", "--wait", "--wait-timeout", str(a.timeout), "--no-deps",
                         *sorted(s for s in present if s in wanted)],
                        cwd=REPO)
    if up.returncode != 0:
        compose_info.print_why(compose)
        previous = sorted({f"{svc}: {old}" for svc, (old, _) in changes.items()})
        print("\nThe new images did not all come up healthy (above: which, and their last log lines). "
              "A failed start leaves the volumes as they were. To go back, run the previous images "
              "(set each in .env as its *_IMAGE, or `git checkout` the previous version) and `make up`:\n  "
              + "\n  ".join(previous), file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    after = inventory(compose, running, known=before)
    rows = kept(before, after)
    print(f"\nUpgraded in {seconds:.0f} s (stop, start, healthy). What each store kept:\n" + table(rows))
    a.report.parent.mkdir(exist_ok=True)
    a.report.write_text(json.dumps({"changes": {s: {"from": o, "to": n} for s, (o, n) in changes.items()},
                                    "seconds": round(seconds), "kept": rows, "before": before, "after": after},
                                   indent=2) + "\n")
    return 0 if all(r["kept"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
