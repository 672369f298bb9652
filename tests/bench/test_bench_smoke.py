"""The capacity benchmark in small (one low step per signal, a few seconds each), so that
`make bench-stack` cannot rot: it runs its own compose project after the other stack
tiers. It asserts what the stack controls: every item the collector accepted arrived
(traces in Jaeger, metric points in Prometheus; log records at the collector alone while
Loki is absent), nothing was refused, failed or dropped, and the pipeline carried a
non-trivial share of the rate. How much of the rate the generator managed to offer is a
property of this machine's timers: it is printed with the figures, never a reason to fail."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e import stack as st
from tests.tooling import REPO, require_image

pytestmark = [pytest.mark.e2e, pytest.mark.signal("capacity")]
NEEDED = ("OTELCOL_IMAGE", "TELEMETRYGEN_IMAGE", "PROMETHEUS_IMAGE", "JAEGER_IMAGE")
SMOKE_JSON = REPO / "build" / "bench-stack-smoke.json"
# A step carried at least this share of what was asked of it: a pipeline that passes a
# trickle is broken, one that passes a fifth of a low step on a busy laptop is not.
NON_TRIVIAL = 0.2


def test_bench_stack_smoke() -> None:
    for var in NEEDED:
        require_image(var)
    p = subprocess.run([sys.executable, "-m", "bench.stack", "--smoke"], cwd=REPO,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    steps = json.loads(SMOKE_JSON.read_text())["steps"]
    assert {s["signal"] for s in steps} == {"traces", "metrics", "logs"}, steps
    st.MEASUREMENTS["bench_smoke"] = {
        f"{s['signal']} {s['target']}": f"{s['rate']}/s asked, offered {s['offered_ratio']:.0%}, "
        f"accepted {s['accepted']:.0f}, arrived {'-' if s['arrived'] is None else int(s['arrived'])}"
        for s in steps}
    lost = [(s["signal"], s["target"], s["note"]) for s in steps if not s["lossless"]]
    assert not lost, f"the lowest step lost data:\n{lost}\n{p.stdout[-2500:]}"
    trickle = [(s["signal"], s["target"], s["accepted"], s["rate"] * s["duration_s"]) for s in steps
               if s["accepted"] < NON_TRIVIAL * s["rate"] * s["duration_s"]]
    assert not trickle, f"carried less than {NON_TRIVIAL:.0%} of what was asked (signal, target, accepted, asked): {trickle}"
    for s in steps:
        if s["target"] == "end-to-end":
            assert s["arrived"] == s["accepted"] > 0, s
