#!/usr/bin/env python3
"""`make history [DAYS=30] [SEED=n] [ENDING=calm|burning]`: a month of the demo's own series,
with planted incidents, backfilled into the stack's Prometheus, so dashboards and the
30-day SLO show a month and the slow burn-rate alert can be drilled.

What it writes, every 30 seconds, exactly as Prometheus scrapes it (job, instance,
the demo's labels): request counters by route and status and latency histograms of shop
and inventory (a daily and weekly traffic curve), orders and stock, the load generator's
counter, and `up` of the demo's targets. Planted incidents (drills/catalogue.py PLANTED,
with the alerts each must page) change those series in their window. The same seed and
the same end give the same data.

How it loads them (upstream's tools, nothing else touches the TSDB):
1. The history ends before the oldest sample the stack's Prometheus already holds (its
   `prometheus_tsdb_lowest_timestamp`; a fresh stack: about now), so no backfilled block
   overlaps data Prometheus has, its head block (the last hours) included.
2. Streamed, in bounded memory: the generator writes a slice of 54 hours as OpenMetrics
   text while `promtool tsdb create-blocks-from openmetrics` turns the slice before into
   one block (a month is 14-15 blocks, not hundreds of 2 h ones), in a staging folder of
   the volume; all blocks are moved in once every slice is done.
3. Prometheus restarted on the volume loads them; then the recording rules are
   evaluated over the history by `promtool tsdb create-blocks-from rules` against it
   (every 5 minutes of history: the rules' live interval is 15 s), a layer at a time (a
   rule over another rule's result needs that result loaded first), and their blocks
   moved in.
Exemplars are not backfilled (OpenMetrics backfill drops them): exemplar dots start with
the live data. Between the history's end and the first live scrape there is a gap of
about the time `make history` took. On any failure, Ctrl-C or SIGTERM, whatever was written
is removed and Prometheus is left running: Prometheus is never stopped, only restarted.

A manifest (build/history-manifest.json) lists every planted incident, its window and
the alerts that must page; `make backtest RULES=file` evaluates any rule file over the
history and scores its pages against them (`make scorecard MANIFEST=...` the shipped rules).

    python3 drills/history.py [--days 30] [--seed 1] [--ending calm|burning] [--end UNIX]
                              [--write-only FOLDER] (the OpenMetrics text only, no stack)
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import random
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from drills.catalogue import BURNING_END, PLANTED, Planted  # noqa: E402
from scripts import compose_info  # noqa: E402

# Every 30 s: the one-minute windows (DemoNoTraffic, the 1m p95) need two samples.
STEP_S = 30
# Recording rules over the history: evaluated every 5 minutes of it, by RULE_LANES promtool
# runs at once (one slice of the history each: Prometheus answers a run's range queries on
# one core). promtool queries and writes one block per rule per block duration, 2 h by
# default: a month made thousands of blocks; RULE_BLOCK (a Prometheus compaction range,
# 486 h = 3^5 x 2 h) makes it a few per rule.
RULE_EVAL_S = 300
RULE_LANES = 2
RULE_BLOCK = "486h"
MANIFEST = REPO / "build" / "history-manifest.json"
# The history is generated and written a slice at a time, each slice one of promtool's
# blocks: 54 h (a Prometheus compaction range, 3^3 x 2 h) keeps the generator's memory
# to about a fifteenth of a month's and makes a month 14-15 blocks.
SLICE_S = 54 * 3600
# Latency buckets of demo_http_request_duration_seconds (demo_app/metrics.py).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# (service, route, method, share of the service's requests, share answered 404 / 409)
ROUTES = {
    "shop": (("/api/products", "GET", 0.5, 0.0), ("/api/products/{product_id}", "GET", 0.3, 0.14),
             ("/api/checkout", "POST", 0.2, 0.05)),
    "inventory": (("/api/items/{item_id}", "GET", 0.6, 0.14), ("/api/items/{item_id}/reserve", "POST", 0.4, 0.05)),
}
PORTS = {"shop": 8080, "inventory": 8081, "loadgen": 8082, "alert-sink": 8090}
# Requests per second at the daily peak (the load generator's default is 5 at shop, which
# calls inventory about once per request).
PEAK_RPS = {"shop": 5.0, "inventory": 4.0}
STOCK_ITEMS = ("espresso beans", "paper filters", "ceramic mug", "burr grinder", "pour-over kettle", "milk jug")
MEDIAN_S = 0.02  # a healthy request's median latency


# The planted incidents and the alerts each must page: drills/catalogue.py (PLANTED).
INCIDENTS = tuple(PLANTED.values())


def within(inc: Planted, hours_before_end: float) -> bool:
    return inc.start_h - inc.hours < hours_before_end <= inc.start_h


class Generator:
    """Counters as the demo's processes would have counted them, step by step, handed out
    a slice of time at a time (memory bounded by a slice, not by the month)."""

    def __init__(self, days: float, seed: int, end: float, ending: str):
        self.rng = random.Random(seed)
        self.end = int(end // STEP_S * STEP_S)
        self.steps = int(days * 86400 // STEP_S)
        self.start = self.end - self.steps * STEP_S
        self.incidents = INCIDENTS + ((BURNING_END,) if ending == "burning" else ())
        self.incidents = tuple(i for i in self.incidents if i.start_h <= days * 24)

    def active(self, t: int, name: str | None = None) -> list[Planted]:
        h = (self.end - t) / 3600
        return [i for i in self.incidents if within(i, h) and (name is None or i.name == name)]

    def traffic(self, t: int) -> float:
        """Share of the peak rate at time t: a daily curve (quiet at night), quieter weekends."""
        hour = (t % 86400) / 3600
        daily = 0.55 + 0.45 * math.sin((hour - 8) / 24 * 2 * math.pi)
        weekend = 0.7 if time.gmtime(t).tm_wday >= 5 else 1.0
        return max(0.05, daily * weekend)

    def error_ratio(self, service: str, t: int, active: list[Planted]) -> float:
        ratio = 0.0002
        for inc in active:
            if inc.service != service:
                continue
            if inc.name in ("fast-burn",):
                ratio = 0.06
            elif inc.name in ("slow-burn", "burning-end"):
                ratio = 0.0045
            elif inc.name == "flapping-errors" and ((self.end - t) // 600) % 3 == 0:
                ratio = 0.04
        return ratio

    def median(self, service: str, active: list[Planted]) -> float:
        return 1.2 if service == "shop" and any(i.name == "latency-regression" for i in active) else MEDIAN_S

    @staticmethod
    @functools.cache
    def below(median: float) -> tuple:
        """Share of requests at or under each bucket bound: log-normal latencies around the
        median (sigma 0.6)."""
        return tuple(0.5 * (1 + math.erf(math.log(le / median) / (0.6 * math.sqrt(2)))) for le in BUCKETS)

    def slices(self, seconds: int = SLICE_S):
        """The history in consecutive slices of time, each aligned to `seconds` since the
        epoch (so each is one of promtool's blocks): yields (slice start, {(family, type,
        help): {sample name with labels: [(t, value), ...]}})."""
        fams: dict[tuple, dict[str, list]] = {}

        def add(fam: tuple, metric: str, t: int, v: float) -> None:
            fams.setdefault(fam, {}).setdefault(metric, []).append((t, v))

        req = ("demo_http_requests", "counter", "HTTP requests served")
        dur = ("demo_http_request_duration_seconds", "histogram", "HTTP request latency")
        orders = ("demo_orders", "counter", "Checkout outcomes")
        stock = ("demo_stock_level", "gauge", "Units in stock")
        lg = ("demo_loadgen_requests", "counter", "Requests sent by the load generator")
        up = ("up", "gauge", "1 if the target was scraped")
        counts: dict[str, float] = {}
        levels = {item: 200.0 for item in STOCK_ITEMS}

        def inc(key: str, by: float) -> int:
            # Fractions carry over, so a 0.45 % error rate on a quiet route is not rounded away.
            counts[key] = counts.get(key, 0.0) + by
            return math.floor(counts[key])

        current = self.start // seconds
        for step in range(self.steps + 1):
            t = self.start + step * STEP_S
            if t // seconds != current:
                if fams:
                    yield current * seconds, fams
                fams, current = {}, t // seconds
            active = self.active(t)
            if any(i.name == "scrape-gap" for i in active):
                continue  # Prometheus was down: nothing was scraped
            dip = any(i.name == "traffic-dip" for i in active)
            for svc, port in PORTS.items():
                add(up, f'up{{job="{svc}",instance="{svc}:{port}"}}', t, 0.0 if dip and svc == "loadgen" else 1.0)
            for svc, routes in ROUTES.items():
                target = f'job="{svc}",instance="{svc}:{PORTS[svc]}"'
                per_step = 0.0 if dip else PEAK_RPS[svc] * STEP_S * self.traffic(t) * self.rng.uniform(0.9, 1.1)
                errors, median = self.error_ratio(svc, t, active), self.median(svc, active)
                for route, method, share, client_errors in routes:
                    n = per_step * share
                    codes = {"500": n * errors, "404" if method == "GET" else "409": n * client_errors}
                    codes["200"] = n - sum(codes.values())
                    for code, k in codes.items():
                        add(req, f'demo_http_requests_total{{{target},method="{method}",route="{route}",'
                                 f'service="{svc}",status_code="{code}"}}', t, inc(f"{svc}{route}{code}", k))
                    base = f'{target},method="{method}",route="{route}",service="{svc}"'
                    # The buckets share out the requests counted (whole ones): each bucket's
                    # counter, rounded, never runs ahead of the count nor lags it by a request
                    # (floored separately, a quiet night's +Inf bucket led le="10" by one request
                    # now and then: a p95 of 10 s out of nothing).
                    before = math.floor(counts.get(f"{svc}{route}count", 0.0))
                    count = inc(f"{svc}{route}count", n)
                    for le, below in zip(BUCKETS, self.below(median)):
                        counts[f"{svc}{route}{le}"] = counts.get(f"{svc}{route}{le}", 0.0) + (count - before) * below
                        add(dur, f'demo_http_request_duration_seconds_bucket{{{base},le="{le}"}}', t,
                            round(counts[f"{svc}{route}{le}"]))
                    add(dur, f'demo_http_request_duration_seconds_bucket{{{base},le="+Inf"}}', t, count)
                    add(dur, f"demo_http_request_duration_seconds_count{{{base}}}", t, count)
                    add(dur, f"demo_http_request_duration_seconds_sum{{{base}}}", t,
                        inc(f"{svc}{route}sum", n * median * 1.2))
                    if route == "/api/checkout":
                        for result, k in (("placed", codes["200"]), ("rejected", codes["409"]),
                                          ("failed", codes["500"])):
                            add(orders, f'demo_orders_total{{job="shop",instance="shop:8080",result="{result}"}}', t,
                                inc(f"orders{result}", k))
                        for item in STOCK_ITEMS:
                            levels[item] -= codes["200"] / len(STOCK_ITEMS)
            for item in STOCK_ITEMS:  # restocked every morning at 06:00
                if t % 86400 == 6 * 3600:
                    levels[item] = 200.0
                add(stock, f'demo_stock_level{{job="inventory",instance="inventory:8081",item="{item}"}}', t,
                    float(max(0, round(levels[item]))))
            if not dip:
                sent = PEAK_RPS["shop"] * STEP_S * self.traffic(t)
                add(lg, 'demo_loadgen_requests_total{job="loadgen",instance="loadgen:8082",endpoint="products",'
                        'outcome="ok"}', t, inc("lg", sent * (1 - self.error_ratio("shop", t, active))))
        if fams:
            yield current * seconds, fams

    @staticmethod
    def openmetrics(fams: dict, out) -> int:
        """Writes one slice as OpenMetrics text (each family's series together, each
        series' samples in time order, as promtool needs); returns the number of samples."""
        n = 0
        for (name, kind, help_), series in fams.items():
            out.write(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
            for metric, samples in series.items():
                out.writelines(f"{metric} {float(v)!r} {t}\n" for t, v in samples)
                n += len(samples)
        out.write("# EOF\n")
        return n

    def write_slices(self, folder: Path) -> int:
        """Every slice as its own file in `folder` (slice-<start>.om); returns the samples."""
        n = 0
        for start, fams in self.slices():
            with open(folder / f"slice-{start}.om", "w") as f:
                n += self.openmetrics(fams, f)
        return n

    def manifest(self, **extra) -> dict:
        return {"start": self.start, "end": self.end, "step_s": STEP_S, **extra, "incidents": [
            {"name": i.name, "what": i.what, "start_h": i.start_h, "hours": i.hours, "service": i.service,
             "from": self.end - int(i.start_h * 3600), "to": self.end - int((i.start_h - i.hours) * 3600),
             "alerts": [{"alertname": e.alertname, "labels": e.labels} for e in i.alerts]} for i in self.incidents]}


# ---------------------------------------------------------------- loading into the stack
class Loader:
    """The stack's Prometheus, through `docker compose` (the Makefile's COMPOSE)."""

    def __init__(self, compose: list[str]):
        self.compose_cmd = compose
        self.children: list[subprocess.Popen] = []  # running `compose run`s, ended on a failure
        self.containers: list[str] = []             # their names, removed on a failure

    def compose(self, *args: str, timeout: float = 600) -> str:
        p = subprocess.run([*self.compose_cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if p.returncode != 0:
            raise SystemExit(f"docker compose {' '.join(args)} failed:\n{p.stderr.strip()[-2000:]}")
        return p.stdout

    def promtool(self, *args: str, mounts: tuple = ()) -> str:
        """promtool in the prometheus service's own container setup: its volume at
        /prometheus, its user, its network."""
        extra = [a for m in mounts for a in ("-v", m)]
        return self.compose("run", "--rm", "--no-deps", *extra, "--entrypoint", "promtool", "prometheus", *args)

    def up(self) -> str:
        """Starts Prometheus if needed; its base URL on the host (HTTPS where the stack is
        shared: STACK_AUTH)."""
        self.compose("up", "-d", "--wait", "--no-deps", "prometheus")
        host, port = compose_info.published(self.compose_cmd)["prometheus"][9090]
        return f"{compose_info.Login.from_settings().scheme}://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    def query(self, base: str, expr: str) -> float | None:
        from drills.target import http

        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http("GET", url, timeout=30, login=compose_info.Login.from_settings())
        if status != 200:
            raise SystemExit(f"Prometheus answered {status} to {expr!r}: {body}")
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def oldest_sample(self) -> float:
        """When the oldest sample Prometheus holds was taken (now for an empty one)."""
        lowest = self.query(self.up(), "prometheus_tsdb_lowest_timestamp")
        # Empty (ready, nothing appended yet): the largest int64, or no sample at all. Its
        # first scrape comes after now, so a history ending now overlaps nothing (waiting
        # for that scrape cost a fresh stack up to a minute).
        return time.time() if lowest is None or lowest > 1e15 else min(time.time(), lowest / 1000)

    def sh(self, script: str, mounts: tuple = (), timeout: float = 600) -> str:
        """A shell script in the prometheus service's own container setup (its volume at
        /prometheus, its user); its stdout."""
        extra = [a for m in mounts for a in ("-v", m)]
        return self.compose("run", "--rm", "--no-deps", "-T", *extra, "--entrypoint", "sh", "prometheus", "-c", script,
                            timeout=timeout)

    def undo(self, moved: list[str]) -> None:
        """After a failure: end its `compose run`s, remove the staged and moved-in blocks,
        and leave Prometheus running (restarted if blocks were moved in: it forgets them)."""
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
        for name in self.containers:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        try:
            self.sh(f"rm -rf {STAGING} {RULES_STAGING} " + " ".join(f"/prometheus/{b}" for b in moved))
            if moved:
                self.compose("restart", "prometheus")
        finally:
            self.up()

    def container(self) -> str:
        return next(r["Name"] for r in compose_info.ps(self.compose_cmd) if r["Service"] == "prometheus")


def rule_layers(files: list[Path]) -> list[list[dict]]:
    """The recording rules of the files, in layers: each rule after the rules it reads."""
    rules = [r for f in files for g in (yaml.safe_load(f.read_text()) or {}).get("groups", [])
             for r in g.get("rules", []) if "record" in r]
    layers, done = [], set()
    while rules:
        ready = [r for r in rules if not any(re.search(rf"\b{re.escape(o['record'])}\b", r["expr"])
                                             for o in rules if o["record"] not in done and o is not r)]
        if not ready:
            raise SystemExit("recording rules read each other in a cycle: " + ", ".join(r["record"] for r in rules))
        layers.append(ready)
        done |= {r["record"] for r in ready}
        rules = [r for r in rules if r not in ready]
    return layers


# Blocks are written into a staging folder of Prometheus' volume and moved in only when
# all of them are there: a failure leaves nothing half-loaded.
STAGING = "/prometheus/history-staging"
RULES_STAGING = "/prometheus/history-rules"
# Moves every block of a staging folder into the data folder, printing each block's name.
MOVE_IN = 'for b in {staging}/*/ {staging}/*/*/; do [ -e "$b/meta.json" ] && mv "$b" /prometheus/ && basename "$b"; done; rm -rf {staging}'


def rules_script(rule_file: str, start: int, end: int, prometheus: str) -> str:
    """sh: `promtool tsdb create-blocks-from rules` over [start, end) in RULE_LANES slices at
    once, each slice's blocks in a folder of its own; on success every block is moved into
    Prometheus' data folder (their names printed), on a failure the failed slice's output
    is printed."""
    out = RULES_STAGING
    step = -(-(end - start) // RULE_LANES)
    lanes = []
    for lo in range(start, end, step):
        lanes.append(f"( promtool tsdb create-blocks-from --max-block-duration={RULE_BLOCK} rules --start={lo} "
                     f"--end={end if lo + step >= end else lo + step - 1} --url=http://{prometheus}:9090 --eval-interval={RULE_EVAL_S}s "
                     f"--output-dir={out}/{lo} /rules/{rule_file} > {out}/{lo}.log 2>&1 "
                     f"|| {{ cat {out}/{lo}.log >&2; exit 1; }} ) & pids=\"$pids $!\"")
    return "\n".join([
        "set -u", f"rm -rf {out}", f"mkdir -p {out}", "pids=", *lanes,
        "failed=0", "for p in $pids; do wait $p || failed=1; done",
        f"[ $failed = 0 ] || {{ rm -rf {out}; exit 1; }}",
        MOVE_IN.format(staging=out),
    ])


# sh, in Prometheus' container: reads slice file names on stdin, turns each into a block in
# the staging folder, and answers each with its name once done (the loader then deletes it).
BLOCKS_SCRIPT = f"""set -eu
rm -rf {STAGING}; mkdir -p {STAGING}
while read f; do
  promtool tsdb create-blocks-from openmetrics --max-block-duration={SLICE_S // 3600}h "/history/$f" {STAGING} >/dev/null
  echo "$f"
done"""


class Interrupted(Exception):
    """SIGTERM: raised in the main thread so the load cleans up as after any failure."""


def _interrupted(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def peak_rss_mib() -> float:
    """The peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def write_blocks(loader: Loader, gen: Generator, work: Path) -> int:
    """Streams the history into blocks in the staging folder: the generator writes one
    slice while promtool turns the one before into a block (at most two slices on disk);
    returns the number of samples."""
    name = f"history-blocks-{os.getpid()}"
    loader.containers.append(name)
    with open(work / "blocks.err", "w+") as err:
        writer = subprocess.Popen([*loader.compose_cmd, "run", "--rm", "--no-deps", "-T", "--name", name,
                                   "-v", f"{work}:/history:ro", "--entrypoint", "sh", "prometheus", "-c",
                                   BLOCKS_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                  text=True, cwd=REPO)
        loader.children.append(writer)

        def done_one() -> None:
            line = writer.stdout.readline().strip()
            if not line:
                writer.wait(60)
                err.seek(0)
                raise SystemExit(f"promtool tsdb create-blocks-from openmetrics failed:\n{err.read()[-2000:]}")
            (work / line).unlink()

        samples, sent = 0, 0
        for start, fams in gen.slices():
            path = work / f"slice-{start}.om"
            with open(path, "w") as f:
                samples += gen.openmetrics(fams, f)
            path.chmod(0o644)
            del fams
            writer.stdin.write(path.name + "\n")
            writer.stdin.flush()
            sent += 1
            if sent > 1:
                done_one()  # the slice before this one is a block now
            print(f"history: slice {sent} ({time.strftime('%m-%d %H:%M', time.gmtime(start))}) written, "
                  f"{samples:,} samples so far", flush=True)
        writer.stdin.close()
        if sent:
            done_one()
        if writer.wait(120):
            err.seek(0)
            raise SystemExit(f"promtool tsdb create-blocks-from openmetrics failed:\n{err.read()[-2000:]}")
    return samples


def load(compose: list[str], days: float, seed: int, ending: str) -> dict:
    """Loads the history into the stack's Prometheus; on any failure or SIGTERM, removes
    whatever it had written and leaves Prometheus running, as it found it."""
    timings, t0 = {}, time.monotonic()
    loader = Loader(compose)
    moved: list[str] = []  # blocks moved into Prometheus' data folder so far
    work = Path(tempfile.mkdtemp(prefix="history-"))
    work.chmod(0o755)  # promtool runs as Prometheus' user
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupted) if main_thread else None
    try:
        end = loader.oldest_sample() - STEP_S  # nothing overlaps what Prometheus holds
        gen = Generator(days, seed, end, ending)
        samples = write_blocks(loader, gen, work)
        moved += loader.sh(MOVE_IN.format(staging=STAGING)).split()
        timings["blocks_s"] = round(time.monotonic() - t0, 1)
        print(f"history: {samples:,} samples over {days:g} days ending "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(gen.end))} generated and written into "
              f"{len(moved)} blocks in {timings['blocks_s']} s (loader peak memory {peak_rss_mib()} MiB)", flush=True)
        t = time.monotonic()
        loader.compose("restart", "prometheus")  # loads them now
        loader.up()
        layers = rule_layers(sorted((REPO / "prometheus" / "rules").glob("*.yml")))
        for i, layer in enumerate(layers):
            # promtool asks Prometheus, which knows a recorded series only once its blocks
            # are loaded: rules over other rules' results wait for the layer before theirs.
            path = work / f"layer{i}.yml"
            path.write_text(yaml.safe_dump({"groups": [{"name": f"history-layer{i}", "rules": layer}]}))
            path.chmod(0o644)
            # One container (Prometheus' image, volume, user and memory limit) runs the
            # layer's slices in RULE_LANES lanes, then moves the blocks in.
            moved += loader.sh(rules_script(path.name, gen.start, gen.end, loader.container()),
                               mounts=(f"{work}:/rules:ro",), timeout=1800).split()
            loader.compose("restart", "prometheus")  # load this layer's blocks now
            loader.up()  # and wait until it is ready again
        timings["rules_s"] = round(time.monotonic() - t, 1)
    except BaseException as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN) if main_thread else None  # let the clean-up finish
        print(f"history: {type(exc).__name__} {exc}: removing what was written, Prometheus left running",
              file=sys.stderr, flush=True)
        loader.undo(moved)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    rules = [r["record"] for layer in layers for r in layer]
    timings["total_s"] = round(time.monotonic() - t0, 1)
    timings["peak_rss_mib"] = peak_rss_mib()
    print(f"history: {len(rules)} recording rules in {len(layers)} layers evaluated over it in {timings['rules_s']} s; "
          f"{timings['total_s']} s in all, {len(moved)} blocks; loader peak memory {timings['peak_rss_mib']} MiB",
          flush=True)
    manifest = gen.manifest(days=days, seed=seed, ending=ending, samples=samples, timings=timings, blocks=len(moved))
    MANIFEST.parent.mkdir(exist_ok=True)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"history: {len(manifest['incidents'])} planted incidents listed in {MANIFEST.relative_to(REPO)}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ending", choices=("calm", "burning"), default="calm",
                    help="burning: the last day burns the error budget slowly (the slow-burn drill)")
    ap.add_argument("--end", type=float, help="the history's end (unix time; with --write-only)")
    ap.add_argument("--write-only", type=Path, metavar="FOLDER",
                    help="write the OpenMetrics text only, a file per slice (slice-<start>.om)")
    ap.add_argument("compose", nargs="*", help="the compose command (default: docker compose)")
    a = ap.parse_args(argv)
    if a.write_only:
        a.write_only.mkdir(parents=True, exist_ok=True)
        samples = Generator(a.days, a.seed, a.end or time.time(), a.ending).write_slices(a.write_only)
        print(f"history: {samples:,} samples written into {a.write_only}; peak memory {peak_rss_mib()} MiB")
        return 0
    load(a.compose or ["docker", "compose"], a.days, a.seed, a.ending)
    return 0


if __name__ == "__main__":
    sys.exit(main())
