#!/usr/bin/env python3
"""`make soak [HOURS=2] [RATE=0]`: the stack left running under load for hours, watched.

A compose project of its own (obs-soak: every service this machine can start, the normal
profile, its own volumes, ports on loopback) runs the demo's load (and, with RATE>0,
telemetrygen's spans on top), while faults of the drill catalogue come and go on a seeded
schedule (drills/chaos.py, one every ~10-20 minutes). Once a SAMPLE interval (a minute)
it samples every container's memory and CPU, its restarts and OOM kills, and every
volume's size (du). Memory is sampled three ways: the working set (usage less inactive page
cache, as `docker stats` shows it, which is what mem_limit bounds), and the processes' RSS
split into anonymous memory (heap, stacks) and mapped file pages (Jaeger's Badger maps its
memtable and tables; the kernel can drop those pages). At the end:
- per service: the peak working set against its mem_limit, and the slopes after warm-up
  (MiB/hour, a least-squares fit over the last hour, or the last half of a shorter run) of
  the working set, the RSS and its anonymous part, and for the Go services the heap in use
  after garbage collection (from their own metrics in Prometheus: a leak grows it, a runtime
  keeping freed pages does not);
- per volume: its growth (MiB/hour, the same fit) and its size at the end;
- proof that the first minutes' data are still there: a trace sent in the first minute
  (by id, whole), Prometheus' samples of that minute, the alert sink's first notification;
- the targets: no restart, no OOM kill, peak working set under 80 % of mem_limit, RSS
  slope <= 2 MiB/hour for every service whose own periodic work fits in the run (Prometheus and
  Loki are reported, not judged: their memory grows until the first head compaction or
  chunk flush, hours in).
A table on stdout, build/soak.json and build/soak.png (RSS and volume sizes over time).

    python3 -m bench.soak [--hours 2 | --minutes M] [--rate SPANS_PER_S] [--sample 60] [--seed 1]
                          [--faults a,b | --no-faults] [--out build/soak.json] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.project import Project  # noqa: E402
from bench.resources import resident, working_set  # noqa: E402
from drills import chaos  # noqa: E402
from drills.target import Target, received_at  # noqa: E402
from scripts import bounds, compose_plan, envfile  # noqa: E402

PROJECT = "obs-soak"
MiB = 1024 * 1024
# Judged by the slope target: their periodic work (GC, flushes, retention) fits in a run.
STEADY = ("shop", "inventory", "loadgen", "alert-sink", "otel-collector", "jaeger", "alertmanager")
# Reported only: memory grows with the head block until its first compaction (~3 h) or
# with chunks until they are flushed.
GROWING = ("prometheus", "loki", "grafana")
SLOPE_MAX_MIB_H = 2.0
PEAK_MAX_SHARE = 0.8


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (unix time, value) points, per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return None if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 3600


class Soak:
    def __init__(self, keep: bool, project: str = PROJECT):
        self.name = project
        self.tmp = Path(tempfile.mkdtemp(prefix="soak-"))
        self.token = secrets.token_urlsafe(24)
        values = {"GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18), "DEMO_ADMIN_TOKEN": self.token,
                  "SLACK_WEBHOOK_URL": "http://alert-sink:8090/slack/slack"}
        envfile.write_secrets(values, self.tmp / "secrets")
        # The demo's load is what the soak watches: its profile is on, whatever .env says.
        env = {"COMPOSE_PROJECT_NAME": project, "SECRETS_DIR": str(self.tmp / "secrets"), "COMPOSE_PROFILES": "demo",
               **{k: v for k, v in os.environ.items() if k.endswith("_IMAGE") or k.endswith("_PULL_POLICY")}}
        self.project = Project(env, keep=keep, name=project)
        self.plan = compose_plan.plan_stack(profiles=compose_plan.active_profiles(env))
        self.target = Target(self.project.cmd, token=self.token)
        import docker

        self.docker = docker.from_env()
        self.samples: list[dict] = []
        self.first: dict = {}

    def up(self) -> None:
        if self.plan.build:
            self.project.compose("build", *self.plan.build, timeout=1800)
        self.project.up(self.plan.start)

    def limits(self) -> dict[str, float]:
        cfg = bounds.config(self.project.cmd)["services"]
        return {svc: int(s["mem_limit"]) / MiB for svc, s in cfg.items() if s.get("mem_limit")}

    def sample(self) -> dict:
        row = {"t": time.time(), "working_set_mib": {}, "rss_mib": {}, "anon_mib": {}, "cpu_s": {}, "restarts": {},
               "oom": {}}
        for c in self.docker.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.name}"}):
            svc = c.labels.get("com.docker.compose.service", c.name)
            if svc in self.plan.one_shot:
                continue
            c.reload()
            row["restarts"][svc] = c.attrs["RestartCount"]
            row["oom"][svc] = c.attrs["State"]["OOMKilled"]
            if c.status != "running":
                continue
            s = c.stats(stream=False)
            mem = s.get("memory_stats", {})
            anon, mapped = resident(mem)
            row["working_set_mib"][svc] = round(working_set(mem) / MiB, 1)
            row["rss_mib"][svc] = round((anon + mapped) / MiB, 1)
            row["anon_mib"][svc] = round(anon / MiB, 1)
            row["cpu_s"][svc] = s["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
        sizes = bounds.volume_sizes(self.name, os.environ.get("PROMETHEUS_IMAGE") or bounds.config(
            self.project.cmd)["services"]["prometheus"]["image"], [s.volume for s in bounds.STORES])
        row["volume_mib"] = {v: round(b / MiB, 2) for v, b in sizes.items()}
        self.samples.append(row)
        return row

    def mark_first_minute(self) -> None:
        """Data of the first minutes, recorded item by item once it has arrived (a trace by
        its span ids, Prometheus' samples of that minute, the sink's first notifications by
        id), so that the end can find every one of them again."""
        import requests

        trace_id = secrets.token_hex(16)
        r = requests.get(self.project.url("shop", 8080) + "/api/products/1", timeout=10,
                         headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        r.raise_for_status()
        self.first = {"trace_id": trace_id, "t": time.time()}
        deadline = time.monotonic() + 180
        while True:  # whole: the same spans twice, 5 s apart, and a first notification
            before = self._first_minute()
            time.sleep(5)
            got = self._first_minute()
            if (got["spans"] and got["spans"] == before["spans"] and got["notifications"]
                    and time.time() > self.first["t"] + 65):  # the minute's samples are all in
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the first minute's data never all arrived: "
                                   f"{({k: len(v) for k, v in got.items()})}")
        self.first["notifications_until"] = time.time()
        self.first.update({k: sorted(v) for k, v in self._first_minute().items()})

    def _first_minute(self) -> dict[str, set]:
        """What the stack holds now of the first minute: the trace's span ids, the
        timestamps of Prometheus' samples of up{job="shop"} in the minute after the mark,
        and the ids of the notifications the sink had received by then (or, before the mark
        is complete, so far)."""
        import requests

        t = self.first["t"]
        trace = requests.get(self.project.url("jaeger", 16686) + f"/api/traces/{self.first['trace_id']}", timeout=30)
        spans = {s["spanID"] for s in (trace.json().get("data") or [{}])[0].get("spans", [])} if trace.ok else set()
        q = requests.get(self.project.url("prometheus", 9090) + "/api/v1/query", timeout=30, params={
            "query": 'up{job="shop"}[1m]', "time": t + 60}).json()["data"]["result"]
        samples = {float(ts) for series in q for ts, _ in series["values"]}
        sink = requests.get(self.project.url("alert-sink", 8090) + "/api/notifications", timeout=30,
                            params={"limit": 1000}).json()["notifications"]
        until = self.first.get("notifications_until", time.time())
        notifications = {n["id"] for n in sink if received_at(n) <= until}
        return {"spans": spans, "samples": samples, "notifications": notifications}

    def first_minute_kept(self) -> dict:
        """Each kind of the first minutes' data: how many of the items recorded then are
        still there (`kept`) of how many (`of`)."""
        now = self._first_minute()
        return {what: {"kept": len(set(self.first[what]) & now[what]), "of": len(self.first[what])}
                for what in ("spans", "samples", "notifications")}

    def live_heap(self, start: float, end: float) -> dict[str, list[tuple[float, float]]]:
        """Per Go service (by its Prometheus job, named after the service): the heap in use
        right after garbage collection, in MiB, once a minute. RSS alone cannot tell a leak
        from a runtime that keeps freed pages; the troughs of the heap's sawtooth can."""
        troughs = ("min by (job) (min_over_time(otelcol_process_runtime_heap_alloc_bytes[5m]))"
                   " or min by (job) (min_over_time(go_memstats_heap_alloc_bytes[5m]))")
        r = self.target.get_json("prometheus", "/api/v1/query_range", query=troughs, start=start, end=end,
                                 step=60)["data"]["result"]
        return {s["metric"]["job"]: [(float(t), float(v) / MiB) for t, v in s["values"]] for s in r}


def faults(soak: Soak, seed: int, minutes: float, names: list[str] | None, log: Path,
           stop: threading.Event) -> threading.Thread:
    """The catalogue's faults (`names`, default every one that can run) on a slow schedule:
    one every ~10-20 minutes, until `stop`."""
    thread = threading.Thread(target=chaos.run, args=(soak.target, seed, minutes, names, log),
                              kwargs={"gap_s": (540, 1080), "extra_hold_s": (30, 90), "stop": stop}, daemon=True)
    thread.start()
    return thread


def report(soak: Soak, kept: dict, out: Path, started: float, warmup_s: float) -> dict:
    limits = soak.limits()
    services = sorted({s for row in soak.samples for s in row["working_set_mib"]})
    end = soak.samples[-1]["t"]
    fit_from = max(started + warmup_s, end - 3600, started + (end - started) / 2)
    result = {"started": started, "ended": end, "hours": round((end - started) / 3600, 2), "first_minute": kept,
              "services": {}, "volumes": {}, "samples": soak.samples}
    problems = []
    def fit(key: str, svc: str) -> float | None:
        return slope_per_hour([(r["t"], r[key][svc]) for r in soak.samples if svc in r[key] and r["t"] >= fit_from])

    try:
        heaps = soak.live_heap(fit_from, end)
    except Exception as exc:  # noqa: BLE001 - the other figures still stand; say what is missing
        heaps = {}
        print(f"soak: no Go heap figures ({exc!r})")
    for svc in services:
        series = [(r["t"], r["working_set_mib"][svc]) for r in soak.samples if svc in r["working_set_mib"]]
        peak = max(v for _, v in series)
        slope = fit("rss_mib", svc)
        restarts = max(r["restarts"].get(svc, 0) for r in soak.samples)
        oom = any(r["oom"].get(svc) for r in soak.samples)
        limit = limits.get(svc)
        cpu = [(r["t"], r["cpu_s"][svc]) for r in soak.samples if svc in r["cpu_s"]]
        cores = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 and cpu[-1][1] >= cpu[0][1] else None
        result["services"][svc] = {"peak_working_set_mib": peak, "mem_limit_mib": limit, "rss_slope_mib_per_h": slope,
                                   "anon_slope_mib_per_h": fit("anon_mib", svc),
                                   "working_set_slope_mib_per_h": fit("working_set_mib", svc),
                                   "live_heap_slope_mib_per_h": slope_per_hour(heaps.get(svc, [])),
                                   "live_heap_end_mib": round(heaps[svc][-1][1], 1) if heaps.get(svc) else None,
                                   "working_set_end_mib": series[-1][1], "restarts": restarts, "oom_killed": oom,
                                   "cpu_cores": round(cores, 3) if cores is not None else None}
        if restarts or oom:
            problems.append(f"{svc}: {restarts} restarts, OOM killed: {oom}")
        if limit and peak >= PEAK_MAX_SHARE * limit:
            problems.append(f"{svc}: peak working set {peak:.0f} MiB >= {PEAK_MAX_SHARE:.0%} of {limit:.0f} MiB")
        if svc in STEADY and slope is not None and slope > SLOPE_MAX_MIB_H and end - started >= 2 * 3600:
            problems.append(f"{svc}: RSS grows {slope:.1f} MiB/hour over the last hour")
    for vol in sorted({v for row in soak.samples for v in row["volume_mib"]}):
        series = [(r["t"], r["volume_mib"][vol]) for r in soak.samples if vol in r["volume_mib"]]
        result["volumes"][vol] = {"end_mib": series[-1][1],
                                  "growth_mib_per_h": slope_per_hour([p for p in series if p[0] >= started + warmup_s])}
    for what, n in kept.items():
        if n["kept"] != n["of"]:
            problems.append(f"the first minutes' {what}: {n['kept']} of {n['of']} still there")
    result["problems"] = problems
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:+.1f}"

    print(f"\n{'':16} {'working set MiB':^20} {'slope MiB/h, last hour':^32}")
    print(f"{'service':16} {'peak':>6} {'limit':>6} {'end':>6} {'wset':>8} {'RSS':>7} {'anon':>7} {'Go heap':>7} {'':11} "
          f"{'cores':>6} restarts OOM")
    for svc, v in result["services"].items():
        print(f"{svc:16} {v['peak_working_set_mib']:>6.0f} {v['mem_limit_mib'] or 0:>6.0f} {v['working_set_end_mib']:>6.0f} "
              f"{rate(v['working_set_slope_mib_per_h']):>8} {rate(v['rss_slope_mib_per_h']):>7} "
              f"{rate(v['anon_slope_mib_per_h']):>7} {rate(v['live_heap_slope_mib_per_h']):>7} "
              f"{' (reported)' if svc in GROWING else '':11} "
              f"{v['cpu_cores'] or 0:>6.2f} {v['restarts']:>8} {'yes' if v['oom_killed'] else 'no':>3}")
    print(f"\n{'volume':18} {'end MiB':>9} {'growth MiB/h':>13}")
    for vol, v in result["volumes"].items():
        growth = "-" if v["growth_mib_per_h"] is None else f"{v['growth_mib_per_h']:.2f}"
        print(f"{vol:18} {v['end_mib']:>9.1f} {growth:>13}")
    print("\nfirst minutes' data at the end: " + "; ".join(f"{k} {v['kept']} of {v['of']}" for k, v in kept.items()))
    print("targets: " + ("all met" if not problems else "; ".join(problems)))
    try:
        plot(result, out.with_suffix(".png"))
        print(f"written: {out}, {out.with_suffix('.png')}")
    except ImportError:
        print(f"written: {out}")
    return result


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = result["started"]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for svc in result["services"]:
        pts = [((r["t"] - t0) / 3600, r["rss_mib"][svc]) for r in result["samples"] if svc in r.get("rss_mib", {})]
        line, = a1.plot([p[0] for p in pts], [p[1] for p in pts], label=svc)
        ws = [((r["t"] - t0) / 3600, r["working_set_mib"][svc]) for r in result["samples"] if svc in r["working_set_mib"]]
        a1.plot([p[0] for p in ws], [p[1] for p in ws], linestyle=":", color=line.get_color())
    a1.set_ylabel("RSS (MiB); dotted: working set")
    a1.legend(fontsize=7, ncol=3)
    for vol in result["volumes"]:
        pts = [((r["t"] - t0) / 3600, r["volume_mib"][vol]) for r in result["samples"] if vol in r["volume_mib"]]
        a2.plot([p[0] for p in pts], [p[1] for p in pts], label=vol)
    a2.set_ylabel("volume size (MiB, du)")
    a2.set_xlabel("hours")
    a2.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


def extra_load(soak: Soak, rate: int, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            soak.project.compose("run", "--rm", "--no-deps", "telemetrygen", "traces", "--otlp-insecure",
                                 "--otlp-endpoint=otel-collector:4317", f"--rate={rate / 10:g}", "--child-spans=9",
                                 "--duration=600s", "--service=soak-load", timeout=900, check=False)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--minutes", type=float, help="instead of --hours (the smoke run in make test)")
    ap.add_argument("--rate", type=int, default=0, help="spans/s from telemetrygen on top of the demo's load")
    ap.add_argument("--sample", type=float, default=60, help="seconds between samples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default="", help="comma-separated fault names (default: every one that can run)")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "soak.json")
    ap.add_argument("--keep", action="store_true", help="leave the project running")
    ap.add_argument("--project", default=PROJECT, help="the compose project's name")
    a = ap.parse_args(argv)
    minutes = a.minutes if a.minutes is not None else a.hours * 60
    soak = Soak(a.keep, a.project)
    stop = threading.Event()
    scheduler = None
    try:
        soak.up()
        started = time.time()
        soak.mark_first_minute()
        if not a.no_faults and minutes >= 20:
            scheduler = faults(soak, a.seed, minutes - 5, chaos.fault_names(a.faults),
                               a.out.with_name("soak-faults.json"), stop)
        if a.rate:
            extra_load(soak, a.rate, stop)
        n = 0
        while time.time() < started + minutes * 60:
            row = soak.sample()
            n += 1
            if n % max(1, int(600 / a.sample)) == 1:
                print(f"soak: {(row['t'] - started) / 60:5.1f} min, RSS MiB " + ", ".join(
                    f"{k} {v:.0f}" for k, v in sorted(row["rss_mib"].items())), flush=True)
            time.sleep(max(0.0, a.sample - (time.time() - row["t"])))
        soak.sample()
        kept = soak.first_minute_kept()
        result = report(soak, kept, a.out, started, warmup_s=min(900, minutes * 60 / 4))
    finally:
        stop.set()
        if scheduler is not None:  # it clears its faults (and its guard) while the stack is up
            scheduler.join(180)
        soak.target.reset()
        soak.project.down()
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
