"""The test tiers, and the runner behind `make test` and `make test-all`.

    python -m tests.tiers quick            make test: every signal travels, nothing is lost,
                                           alerts arrive (unit, config, exercises, e2e)
    python -m tests.tiers all              make test-all: every tier (CI runs this)
    python -m tests.tiers scale forward    tiers by name (make test-all TIERS=scale,forward)
    python -m tests.tiers --list           the tiers, what each proves, its paths

Each tier is one pytest process (extra arguments after `--` go to every one of them), its
output in build/tiers/<tier>.log and its results in build/tiers/<tier>.xml. Tiers run side
by side, LANES at a time, the longest first: the stack tiers each bring up a compose
project of their own (own name, ephemeral loopback ports, own volumes), and spend their
time waiting on `for:` windows, outages and retries rather than on CPU. The run ends with each tier's outcome and seconds, the lines
its summary printed (e2e figures, what did not run and why), its slowest tests, and the
same table in build/tiers.json (and build/tiers-quick.json or -all.json).

CI builds the twins that only some tiers use (LATER_TWINS: Thanos, the previous releases)
beside the tiers (.ci/run): TWINS_PENDING names the file that build writes its exit code to
when it ends, TWINS_PENDING_PID its process, and twins/images.env lists each image as soon
as it is built. A tier that needs one (Tier.twins) starts once it is there; the others go
first.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "tiers"
TABLE = REPO / "build" / "tiers.json"


@dataclass(frozen=True)
class Tier:
    name: str
    paths: tuple[str, ...]
    proves: str
    quick: bool = False      # part of `make test`
    stack: bool = False      # brings up a compose stack (needs a Docker engine)
    est_s: int = 60          # seconds it took here (scheduling only: the longest start first)
    # Seconds at its start with no other tier running: its "a healthy stack pages nothing"
    # measures the stack, not a 2-core machine bringing up three stacks at once (there,
    # DemoHighLatencyP95 rightly paged: the shop really was slow).
    solo_s: int = 0
    # The later twins (below) it needs, which CI may still be building when the tiers start;
    # all_twins: it reads every twin, so it waits for the whole build.
    twins: tuple[str, ...] = ()
    all_twins: bool = False


# The twin images (their *_IMAGE variables) only some tiers use: CI builds them beside the
# tiers (.ci/run asks for their names: --later-twins).
PREVIOUS_TWINS = ("PROMETHEUS_PREVIOUS_IMAGE", "ALERTMANAGER_PREVIOUS_IMAGE", "OTELCOL_PREVIOUS_IMAGE",
                  "JAEGER_PREVIOUS_IMAGE")
LATER_TWINS = ("THANOS_IMAGE", *PREVIOUS_TWINS)


def build_name(var: str) -> str:
    """THANOS_IMAGE -> thanos, PROMETHEUS_PREVIOUS_IMAGE -> prometheus-previous: the
    name twins/build.sh gives the image."""
    return var.removesuffix("_IMAGE").lower().replace("_", "-")


TIERS: tuple[Tier, ...] = (
    Tier("unit", ("tests/unit",), "the demo package in-process: spans, exemplars, logs, faults, "
         "the alert sink, generated API tests and floods, the sink's page in Chromium", quick=True, est_s=100),
    Tier("config", ("tests/config",), "the real validators on every config, promtool and amtool tests, "
         "cross-checks, docs", quick=True, est_s=90, all_twins=True),  # each twin is its pin's version
    Tier("exercises", ("tests/exercises",), "the exercises' grader: references pass, wrong answers fail "
         "on the criterion they name", quick=True, est_s=120),
    Tier("e2e", ("tests/e2e",), "the stack: every signal arrives, alerts reach the sink and resolve, "
         "outages lose nothing", quick=True, stack=True, est_s=750),
    Tier("days", ("tests/days",), "living with it: restarts and down/up keep every store's data, the demo "
         "rides out a missing collector, make up tells the truth about readiness", stack=True, est_s=450),
    Tier("auth", ("tests/auth",), "the stack shared (STACK_AUTH): every published port behind TLS and "
         "the login, OTLP only with the token, a drill through the logins, a rotated certificate, and "
         "the e2e signal tests on it", stack=True, est_s=700),
    Tier("scale", ("tests/scale",), "the scale-out profile: agent and gateways, Alertmanager pair, "
         "Prometheus pair with Thanos", stack=True, est_s=700, twins=("THANOS_IMAGE",)),
    Tier("forward", ("tests/forward",), "the copy to your own backend, counted at real receivers", stack=True,
         est_s=1050, twins=("THANOS_IMAGE",)),  # Thanos receive: the remote_write backend
    Tier("own", ("tests/own",), "your own things: the demo off, your places, a service of yours, your "
         "host and containers, nothing paging for 15 minutes, the memory of it all", stack=True, est_s=1300),
    Tier("upgrade", ("tests/upgrade",), "upgrades keep every store's data: the previous releases write, "
         "make upgrade moves to the pins, every item counted; going back works or fails loudly", stack=True,
         est_s=600, twins=PREVIOUS_TWINS),
    Tier("chaos", ("tests/chaos",), "the training ground: quiet when healthy, a seeded chaos run scored, "
         "a recorded drill, live grading", stack=True, est_s=1400, solo_s=240),
    Tier("history", ("tests/history",), "a month of backfilled history with planted incidents", stack=True,
         est_s=300),
    Tier("bench", ("tests/bench",), "a capacity step per signal, the accelerated fill of every bound, "
         "a soak smoke", stack=True, est_s=650),
)
BY_NAME = {t.name: t for t in TIERS}


def select(words: list[str]) -> list[Tier]:
    """`quick`, `all`, or tier names (commas or spaces), in the table's order."""
    names: set[str] = set()
    for word in words:
        for name in filter(None, re.split(r"[,\s]+", word)):
            if name == "all":
                names |= set(BY_NAME)
            elif name == "quick":
                names |= {t.name for t in TIERS if t.quick}
            elif name in BY_NAME:
                names.add(name)
            else:
                raise SystemExit(f"unknown tier {name!r}: one of quick, all, {', '.join(BY_NAME)}")
    return [t for t in TIERS if t.name in names]


# ------------------------------------------------------------------ reading a tier's log

_FINAL = re.compile(r"^=+ (.*\b(?:passed|failed|skipped|error|errors|deselected|no tests ran)\b.*) in [\d.]+s.*=+$")
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


def summary_of(log: str) -> dict:
    """What a tier's pytest printed at its end: the final counts line, the e2e summary
    section and the 'not run' line, the failures section, the slowest tests."""
    lines = log.splitlines()
    final = next((m.group(1) for line in reversed(lines) if (m := _FINAL.match(line.strip()))), "")
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in _COUNT.findall(final)}

    def section(title: str) -> list[str]:
        start = next((i for i, line in enumerate(lines) if re.match(rf"^=+ {title} =+$", line)), None)
        if start is None:
            return []
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^=+ .* =+$", lines[i])), len(lines))
        return [line for line in lines[start + 1:end] if line.strip()]

    slowest = [line for line in section(r"slowest \d+ durations") if re.match(r"^\d+\.\d+s call", line)]
    notes = section("e2e summary") + [line for line in lines if line.startswith("not run:")]
    failures = section("FAILURES") + section("ERRORS") + section("short test summary info")
    return {"final": final, "counts": counts, "notes": notes, "slowest": slowest[:5], "failures": failures}


# ------------------------------------------------------------------ running

@dataclass
class Outcome:
    tier: Tier
    code: int
    seconds: float
    summary: dict
    selected: bool = False  # the user narrowed the run (-k, -m, a node id)

    @classmethod
    def not_run(cls, tier: Tier, code: int, why: str, say) -> Outcome:
        """A tier that failed before its pytest could run, and why."""
        say(f"{tier.name}: FAILED: {why}")
        return cls(tier, code, 0.0, {"final": why, "counts": {}, "notes": [], "slowest": [], "failures": [why]})

    @property
    def ok(self) -> bool:
        # 5: no tests were collected. Only where the user narrowed the run is that not a
        # failure: a tier whose tests were renamed or lost collects nothing too.
        return self.code == 0 or (self.code == 5 and self.selected)


def narrowed(pytest_args: list[str]) -> bool:
    """Whether the user picked some tests (-k, -m, a node id) rather than whole tiers."""
    return any(a.startswith(("-k", "-m")) or "::" in a for a in pytest_args)


class TwinsBuilding:
    """A twins/build.sh still running beside the tiers (.ci/run): `done_file` gets its exit
    code (and seconds) when it ends, its log is the same name with .log, and
    twins/images.env lists each image once it is built (never one still being built)."""

    IMAGES_ENV = REPO / "twins" / "images.env"
    POLL_S = 5.0

    def __init__(self, done_file: Path, pid: int | None = None):
        self.done_file, self.pid = done_file, pid
        self.log = done_file.with_suffix(".log")

    def env(self) -> dict[str, str]:
        """twins/images.env as it is now: VAR=value lines."""
        try:
            lines = self.IMAGES_ENV.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_][A-Z0-9_]*=", line))

    def env_over(self, base: dict[str, str]) -> dict[str, str]:
        """`base` with images.env laid over it; REQUIRED_IMAGES only ever grows."""
        now = self.env()
        required = [v for v in (base.get("REQUIRED_IMAGES", "") + "," + now.get("REQUIRED_IMAGES", "")).split(",") if v]
        return {**base, **now, "REQUIRED_IMAGES": ",".join(dict.fromkeys(required))}

    def _alive(self) -> bool:
        try:  # a zombie has ended too (.ci/run reaps it only after the tiers)
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def exit_code(self) -> int | None:
        """None while the build runs; -1 when it ended without writing its exit code."""
        try:
            return int(self.done_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return -1 if self.pid and not self._alive() and not self.done_file.exists() else None

    def missing(self, tier: Tier) -> list[str]:
        if tier.all_twins and self.exit_code() is None:
            return ["every twin"]
        env = self.env()
        return [v for v in tier.twins if v not in env]

    def ready(self, tier: Tier) -> bool:
        return not self.missing(tier) or self.exit_code() is not None

    def wait(self, tier: Tier, say) -> str | None:
        """Until the tier's twins are there: None, or why they never will be."""
        if not (missing := self.missing(tier)):
            return None
        say(f"{tier.name}: waits for {', '.join(missing)} (twins/build.sh, beside the tiers)")
        t0 = time.monotonic()
        while not self.ready(tier):
            time.sleep(self.POLL_S)
        if missing := self.missing(tier):
            return (f"the twins build beside the tiers ended (exit code {self.exit_code()}) without "
                    f"{', '.join(missing)}: see {os.path.relpath(self.log, REPO)}")
        say(f"{tier.name}: waited {time.monotonic() - t0:.0f} s for its twins")
        return None


def run_tier(tier: Tier, pytest_args: list[str], say, twins: TwinsBuilding | None = None) -> Outcome:
    OUT.mkdir(parents=True, exist_ok=True)
    log_path, xml = OUT / f"{tier.name}.log", OUT / f"{tier.name}.xml"
    if twins and (why := twins.wait(tier, say)):
        return Outcome.not_run(tier, 2, why, say)
    cmd = [sys.executable, "-m", "pytest", *tier.paths, "-p", "no:cacheprovider", "--durations=15",
           f"--junitxml={xml}", *pytest_args]
    # TEST_TIER: the stack report writes this tier's figures to a file of its own. The twins
    # built beside the tiers: images.env as it is now (with REQUIRED_IMAGES naming them).
    env = {**(twins.env_over(dict(os.environ)) if twins else os.environ), "TEST_TIER": tier.name,
           "PYTHONUNBUFFERED": "1"}
    say(f"{tier.name}: started ({' '.join(tier.paths)}), log {os.path.relpath(log_path, REPO)}")
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - t0
    outcome = Outcome(tier, code, seconds, summary_of(log_path.read_text(errors="replace")), narrowed(pytest_args))
    say(f"{tier.name}: {'passed' if outcome.ok else 'FAILED'} in {seconds:.0f} s: "
        f"{outcome.summary['final'] or f'pytest exit code {code}'}")
    if not outcome.ok:
        say("\n".join(["", f"----- {tier.name}: failures (whole log: {os.path.relpath(log_path, REPO)})",
                       *(outcome.summary["failures"][-80:] or log_path.read_text(errors="replace").splitlines()[-60:]),
                       "-----"]))
    return outcome


def run(tiers: list[Tier], lanes: int, pytest_args: list[str], twins: TwinsBuilding | None = None) -> list[Outcome]:
    """The longest first, `lanes` at a time; a tier that asks for a solo start (solo_s)
    first, and nothing beside it until then. A tier whose twins are still being built
    waits its turn behind those that can start."""
    lock = threading.Lock()
    t_start = time.monotonic()
    waiting = sorted(tiers, key=lambda t: (-t.solo_s, -t.est_s))
    solo = waiting[0] if waiting and waiting[0].solo_s and lanes > 1 else None
    solo_until = t_start + (solo.solo_s if solo else 0)
    outcomes: list[Outcome] = []

    def say(text: str) -> None:
        with lock:
            print(f"[tiers +{time.monotonic() - t_start:5.0f}s] {text}", flush=True)

    def take() -> Tier | None:
        with lock:
            if not waiting:
                return None
            tier = next((t for t in waiting if twins is None or twins.ready(t)), waiting[0])
            waiting.remove(tier)
            return tier

    def lane(number: int) -> None:
        starts_solo = number == 0  # lane 1 starts the solo tier; nothing else starts until solo_until
        while True:
            if solo and not starts_solo and time.monotonic() < solo_until:
                say(f"lane {number + 1}: waits {solo_until - time.monotonic():.0f} s ({solo.name} starts alone)")
                time.sleep(max(0.0, solo_until - time.monotonic()))
            starts_solo = False
            if (tier := take()) is None:
                return
            try:
                outcome = run_tier(tier, pytest_args, say, twins)
            except Exception as exc:  # a tier the runner could not run is a failed tier, not a lost one
                outcome = Outcome.not_run(tier, 3, f"the runner failed: {type(exc).__name__}: {exc}", say)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=lane, args=(n,), name=f"lane-{n + 1}") for n in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    order = {t.name: i for i, t in enumerate(tiers)}  # the order asked for (select: the table's)
    return sorted(outcomes, key=lambda o: order[o.tier.name])


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU so far (/proc/stat; zeros where there is none)."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def report(outcomes: list[Outcome], wall_s: float, cpu_busy: float | None = None) -> str:
    lines = ["", "=" * 30 + " tiers " + "=" * 30]
    for o in outcomes:
        if o.summary["notes"]:
            lines.append(f"-- {o.tier.name}")
            lines += ["   " + n for n in o.summary["notes"]]
    lines.append("-- slowest tests")
    for o in outcomes:
        lines += [f"   {o.tier.name:<10}{s}" for s in o.summary["slowest"][:3]]
    lines.append("")
    lines.append(f"{'tier':<11}{'result':<8}{'seconds':>8}  counts")
    for o in outcomes:
        counts = ", ".join(f"{n} {k}" for k, n in o.summary["counts"].items()) or f"exit code {o.code}"
        lines.append(f"{o.tier.name:<11}{'ok' if o.ok else 'FAILED':<8}{o.seconds:>8.0f}  {counts}")
    total = sum(o.seconds for o in outcomes)
    lines.append(f"{'wall clock':<19}{wall_s:>8.0f}  (the tiers' own seconds add up to {total:.0f})")
    if cpu_busy is not None:
        lines.append(f"CPU busy {100 * cpu_busy:.0f} % of the run, on {os.cpu_count()} CPUs")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.tiers", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tiers", nargs="*", default=["quick"], help="quick (default), all, or tier names")
    ap.add_argument("--lanes", type=int, default=int(os.environ.get("TEST_LANES") or 3),
                    help="tiers at a time (TEST_LANES, default 3)")
    ap.add_argument("--list", action="store_true", help="list the tiers and exit")
    ap.add_argument("--later-twins", action="store_true",
                    help="print the twins/build.sh names of the twins only some tiers use, and exit")
    argv, _, pytest_args = (argv[:argv.index("--")], None, argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, None, [])
    args = ap.parse_args(argv)
    if args.later_twins:
        print(" ".join(build_name(v) for v in LATER_TWINS))
        return 0
    if args.list:
        for t in TIERS:
            where = "make test" if t.quick else "make test-all"
            print(f"{t.name:<10} {where:<14} {' '.join(t.paths):<16} {t.proves}")
        return 0
    tiers = select(args.tiers)
    pending, pid = os.environ.get("TWINS_PENDING"), os.environ.get("TWINS_PENDING_PID")
    twins = TwinsBuilding(Path(pending), int(pid) if pid else None) if pending else None
    t0, (busy0, total0) = time.monotonic(), cpu_times()
    outcomes = run(tiers, max(1, args.lanes), pytest_args, twins)
    wall, (busy1, total1) = time.monotonic() - t0, cpu_times()
    cpu_busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else None
    print(report(outcomes, wall, cpu_busy), flush=True)
    # build/tiers.json: the last run; build/tiers-quick.json, -all.json: the last of each kind.
    selection = next((w for w in ("quick", "all") if [t.name for t in select([w])] == [t.name for t in tiers]), "some")
    table = json.dumps({
        "selection": selection, "wall_s": round(wall), "lanes": args.lanes,
        "cpu_busy": None if cpu_busy is None else round(cpu_busy, 3),
        "tiers": {o.tier.name: {"ok": o.ok, "seconds": round(o.seconds), "exit_code": o.code,
                                "counts": o.summary["counts"], "slowest": o.summary["slowest"]}
                  for o in outcomes}}, indent=2) + "\n"
    TABLE.parent.mkdir(exist_ok=True)
    for path in (TABLE, TABLE.with_name(f"tiers-{selection}.json")):
        path.write_text(table)
    failed = [o.tier.name for o in outcomes if not o.ok]
    if failed:
        print(f"FAILED tiers: {', '.join(failed)} (logs in {os.path.relpath(OUT, REPO)}/)", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
