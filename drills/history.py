#!/usr/bin/env python3
"""`make history [DAYS=30] [SEED=n] [ENDING=calm|burning]`: a month of the demo's own series,
with planted incidents, backfilled into the stack's Prometheus, so dashboards and the
30-day SLO show a month and the slow burn-rate alert can be drilled.

What it writes, every 30 seconds, exactly as Prometheus scrapes it (job, instance,
the demo's labels): request counters by route and status and latency histograms of shop
and inventory (a daily and weekly traffic curve), orders and stock, the load generator's
counter, and `up` of the demo's targets. Planted incidents (drills/history.py INCIDENTS,
each with the alert that must fire) change those series in their window. The same seed
and the same end give the same data.

How it loads them (upstream's tools, nothing else touches the TSDB):
1. The history ends before the oldest sample the stack's Prometheus already holds (its
   `prometheus_tsdb_lowest_timestamp`; a fresh stack: about now), so no backfilled block
   overlaps data Prometheus has, its head block (the last hours) included.
2. OpenMetrics text -> `promtool tsdb create-blocks-from openmetrics` into the volume,
   with --max-block-duration so a month is a few blocks, not hundreds of 2 h ones.
3. Prometheus (re)started on the volume loads them; then the recording rules are
   evaluated over the history by `promtool tsdb create-blocks-from rules` against it
   (every 5 minutes of history: the rules' live interval is 15 s), a layer at a time (a
   rule over another rule's result needs that result loaded first), and their blocks
   moved in.
Exemplars are not backfilled (OpenMetrics backfill drops them): exemplar dots start with
the live data. Between the history's end and the first live scrape there is a gap of
about the time `make history` took.

A manifest (build/history-manifest.json) lists every planted incident, its window and
the alert that must fire; `make scorecard MANIFEST=build/history-manifest.json` checks
them against Prometheus' evaluation of the alert rules over the history.

    python3 drills/history.py [--days 30] [--seed 1] [--ending calm|burning] [--end UNIX]
                              [--write-only FILE]   (the OpenMetrics text only, no stack)

Standard library only.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
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


@dataclass(frozen=True)
class Incident:
    name: str
    what: str
    start_h: float        # hours before the history's end
    hours: float
    alerts: tuple = ()    # (alertname, {labels}) that must fire during it
    service: str = "shop"


INCIDENTS = (
    Incident("fast-burn", "shop answers 6 % of requests with a 500 for 40 minutes", 20 * 24, 40 / 60,
             (("DemoErrorBudgetBurnFast", {"service": "shop"}),)),
    Incident("latency-regression", "shop's p95 latency rises above 1 s for 90 minutes", 15 * 24, 1.5,
             (("DemoHighLatencyP95", {"service": "shop"}),)),
    Incident("traffic-dip", "the load generator stops for 20 minutes: no traffic", 12 * 24, 20 / 60,
             (("TargetDown", {"service": "loadgen"}), ("DemoNoTraffic", {"service": "shop"}),
              ("DemoNoTraffic", {"service": "inventory"})), service="loadgen"),
    Incident("slow-burn", "shop answers 0.45 % of requests with a 500 for two days", 10 * 24, 48,
             (("DemoErrorBudgetBurnSlow", {"service": "shop"}),)),
    Incident("scrape-gap", "Prometheus itself was down for 30 minutes: no sample of anything", 7 * 24, 0.5, ()),
    Incident("flapping-errors", "inventory fails 4 % of requests in 10-minute bursts every 30 minutes, "
             "for 4 hours", 5 * 24, 4, (("DemoErrorBudgetBurnFast", {"service": "inventory"}),), service="inventory"),
)
# ENDING=burning: the history's last day burns slowly, so the slow burn-rate alert fires on
# the live edge (the drill `slow-burn` adds a mild live error rate on top).
BURNING_END = Incident("burning-end", "shop answers 0.45 % of requests with a 500 over the last 26 hours",
                       26, 26, (("DemoErrorBudgetBurnSlow", {"service": "shop"}),))


def within(inc: Incident, hours_before_end: float) -> bool:
    return inc.start_h - inc.hours < hours_before_end <= inc.start_h


class Generator:
    """Counters as the demo's processes would have counted them, step by step."""

    def __init__(self, days: float, seed: int, end: float, ending: str):
        self.rng = random.Random(seed)
        self.end = int(end // STEP_S * STEP_S)
        self.steps = int(days * 86400 // STEP_S)
        self.start = self.end - self.steps * STEP_S
        self.incidents = INCIDENTS + ((BURNING_END,) if ending == "burning" else ())
        self.incidents = tuple(i for i in self.incidents if i.start_h <= days * 24)

    def active(self, t: int, name: str | None = None) -> list[Incident]:
        h = (self.end - t) / 3600
        return [i for i in self.incidents if within(i, h) and (name is None or i.name == name)]

    def traffic(self, t: int) -> float:
        """Share of the peak rate at time t: a daily curve (quiet at night), quieter weekends."""
        hour = (t % 86400) / 3600
        daily = 0.55 + 0.45 * math.sin((hour - 8) / 24 * 2 * math.pi)
        weekend = 0.7 if time.gmtime(t).tm_wday >= 5 else 1.0
        return max(0.05, daily * weekend)

    def error_ratio(self, service: str, t: int) -> float:
        ratio = 0.0002
        for inc in self.active(t):
            if inc.service != service:
                continue
            if inc.name in ("fast-burn",):
                ratio = 0.06
            elif inc.name in ("slow-burn", "burning-end"):
                ratio = 0.0045
            elif inc.name == "flapping-errors" and ((self.end - t) // 600) % 3 == 0:
                ratio = 0.04
        return ratio

    def median(self, service: str, t: int) -> float:
        return 1.2 if service == "shop" and self.active(t, "latency-regression") else MEDIAN_S

    def series(self) -> dict[tuple, dict[str, list]]:
        """(family, type, help) -> {sample name with labels: [(t, value), ...]}."""
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

        for step in range(self.steps + 1):
            t = self.start + step * STEP_S
            if self.active(t, "scrape-gap"):
                continue  # Prometheus was down: nothing was scraped
            dip = bool(self.active(t, "traffic-dip"))
            for svc, port in PORTS.items():
                add(up, f'up{{job="{svc}",instance="{svc}:{port}"}}', t, 0.0 if dip and svc == "loadgen" else 1.0)
            for svc, routes in ROUTES.items():
                target = f'job="{svc}",instance="{svc}:{PORTS[svc]}"'
                per_step = 0.0 if dip else PEAK_RPS[svc] * STEP_S * self.traffic(t) * self.rng.uniform(0.9, 1.1)
                errors, median = self.error_ratio(svc, t), self.median(svc, t)
                for route, method, share, client_errors in routes:
                    n = per_step * share
                    codes = {"500": n * errors, "404" if method == "GET" else "409": n * client_errors}
                    codes["200"] = n - sum(codes.values())
                    for code, k in codes.items():
                        add(req, f'demo_http_requests_total{{{target},method="{method}",route="{route}",'
                                 f'service="{svc}",status_code="{code}"}}', t, inc(f"{svc}{route}{code}", k))
                    base = f'{target},method="{method}",route="{route}",service="{svc}"'
                    total = n
                    for le in BUCKETS:
                        # Log-normal latencies around the median (sigma 0.6).
                        below = 0.5 * (1 + math.erf(math.log(le / median) / (0.6 * math.sqrt(2))))
                        add(dur, f'demo_http_request_duration_seconds_bucket{{{base},le="{le}"}}', t,
                            inc(f"{svc}{route}{le}", total * below))
                    count = inc(f"{svc}{route}count", total)
                    add(dur, f'demo_http_request_duration_seconds_bucket{{{base},le="+Inf"}}', t, count)
                    add(dur, f"demo_http_request_duration_seconds_count{{{base}}}", t, count)
                    add(dur, f"demo_http_request_duration_seconds_sum{{{base}}}", t,
                        inc(f"{svc}{route}sum", total * median * 1.2))
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
                        'outcome="ok"}', t, inc("lg", sent * (1 - self.error_ratio("shop", t))))
        return fams

    def openmetrics(self, out) -> int:
        """Writes the history as OpenMetrics text; returns the number of samples."""
        n = 0
        for (name, kind, help_), series in self.series().items():
            out.write(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
            for metric, samples in series.items():
                out.writelines(f"{metric} {float(v)!r} {t}\n" for t, v in samples)
                n += len(samples)
        out.write("# EOF\n")
        return n

    def manifest(self, **extra) -> dict:
        return {"start": self.start, "end": self.end, "step_s": STEP_S, **extra, "incidents": [
            {**asdict(i), "from": self.end - int(i.start_h * 3600), "to": self.end - int((i.start_h - i.hours) * 3600),
             "alerts": [{"alertname": a, "labels": labels} for a, labels in i.alerts]} for i in self.incidents]}


# ---------------------------------------------------------------- loading into the stack
class Loader:
    """The stack's Prometheus, through `docker compose` (the Makefile's COMPOSE)."""

    def __init__(self, compose: list[str]):
        self.compose_cmd = compose

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
        """Starts Prometheus if needed; its base URL on the host."""
        self.compose("up", "-d", "--wait", "--no-deps", "prometheus")
        host, port = compose_info.published(self.compose_cmd)["prometheus"][9090]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    def query(self, base: str, expr: str) -> float | None:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=30) as r:
            result = json.load(r)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def oldest_sample(self) -> float:
        """When the oldest sample Prometheus holds was taken (now for an empty one)."""
        base = self.up()
        deadline = time.monotonic() + 60
        while (lowest := self.query(base, "prometheus_tsdb_lowest_timestamp")) is None or lowest > 1e15:
            if time.monotonic() > deadline:
                return time.time()
            time.sleep(2)
        return min(time.time(), lowest / 1000)

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


def rules_script(rule_file: str, start: int, end: int, prometheus: str) -> str:
    """sh: `promtool tsdb create-blocks-from rules` over [start, end) in RULE_LANES slices at
    once, each slice's blocks in a folder of its own; on success every block is moved into
    Prometheus' data folder, on a failure the failed slice's output is printed."""
    out = "/prometheus/history-rules"
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
        f"for slice in {out}/*/; do mv \"$slice\"* /prometheus/ 2>/dev/null; done",  # a slice may hold none
        f"rm -rf {out}",
    ])


def load(compose: list[str], days: float, seed: int, ending: str) -> dict:
    timings, t0 = {}, time.monotonic()
    loader = Loader(compose)
    end = loader.oldest_sample() - STEP_S  # nothing overlaps what Prometheus holds
    gen = Generator(days, seed, end, ending)
    work = Path(tempfile.mkdtemp(prefix="history-"))
    work.chmod(0o755)  # promtool runs as Prometheus' user
    try:
        with open(work / "history.om", "w") as f:
            samples = gen.openmetrics(f)
        (work / "history.om").chmod(0o644)
        timings["generate_s"] = round(time.monotonic() - t0, 1)
        print(f"history: {samples:,} samples over {days:g} days ending {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(gen.end))} "
              f"written in {timings['generate_s']} s", flush=True)
        t = time.monotonic()
        loader.compose("stop", "prometheus")
        loader.promtool("tsdb", "create-blocks-from", "openmetrics", f"--max-block-duration={int(days * 24) + 24}h",
                        "/history/history.om", "/prometheus", mounts=(f"{work}:/history:ro",))
        timings["blocks_s"] = round(time.monotonic() - t, 1)
        print(f"history: blocks written into Prometheus' volume in {timings['blocks_s']} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t = time.monotonic()
    loader.up()
    layers = rule_layers(sorted((REPO / "prometheus" / "rules").glob("*.yml")))
    rules_dir = Path(tempfile.mkdtemp(prefix="history-rules-"))
    rules_dir.chmod(0o755)
    try:
        for i, layer in enumerate(layers):
            # promtool asks Prometheus, which knows a recorded series only once its blocks
            # are loaded: rules over other rules' results wait for the layer before theirs.
            path = rules_dir / f"layer{i}.yml"
            path.write_text(yaml.safe_dump({"groups": [{"name": f"history-layer{i}", "rules": layer}]}))
            path.chmod(0o644)
            # One container (Prometheus' image, volume, user and memory limit) runs the
            # layer's slices in RULE_LANES lanes, then moves the blocks in.
            loader.compose("run", "--rm", "--no-deps", "-v", f"{rules_dir}:/rules:ro", "--entrypoint", "sh",
                           "prometheus", "-c", rules_script(path.name, gen.start, gen.end, loader.container()),
                           timeout=1800)
            loader.compose("restart", "prometheus")  # load this layer's blocks now
            loader.up()  # and wait until it is ready again
    finally:
        shutil.rmtree(rules_dir, ignore_errors=True)
    rules = [r["record"] for layer in layers for r in layer]
    timings["rules_s"] = round(time.monotonic() - t, 1)
    timings["total_s"] = round(time.monotonic() - t0, 1)
    print(f"history: {len(rules)} recording rules in {len(layers)} layers evaluated over it in {timings['rules_s']} s; "
          f"{timings['total_s']} s in all", flush=True)
    manifest = gen.manifest(days=days, seed=seed, ending=ending, samples=samples, timings=timings)
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
    ap.add_argument("--write-only", type=Path, metavar="FILE", help="write the OpenMetrics text only")
    ap.add_argument("compose", nargs="*", help="the compose command (default: docker compose)")
    a = ap.parse_args(argv)
    if a.write_only:
        gen = Generator(a.days, a.seed, a.end or time.time(), a.ending)
        with open(a.write_only, "w") as f:
            gen.openmetrics(f)
        return 0
    load(a.compose or ["docker", "compose"], a.days, a.seed, a.ending)
    return 0


if __name__ == "__main__":
    sys.exit(main())
