"""The capacity benchmark in small (one low step per signal, a few seconds each), so that
`make bench-stack` cannot rot: it runs its own compose project after the other stack
tiers, and the lowest step must be carried end to end and by the collector alone."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e import stack as st
from tests.tooling import REPO, require_image

pytestmark = [pytest.mark.e2e, pytest.mark.signal("capacity")]
NEEDED = ("OTELCOL_IMAGE", "TELEMETRYGEN_IMAGE", "PROMETHEUS_IMAGE", "JAEGER_IMAGE")


def test_bench_stack_smoke() -> None:
    for var in NEEDED:
        require_image(var)
    p = subprocess.run([sys.executable, str(REPO / "bench" / "stack.py"), "--smoke"], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    result = json.loads((REPO / "build" / "bench-stack.json").read_text())
    steps = result["steps"]
    assert {s["signal"] for s in steps} == {"traces", "metrics", "logs"}, steps
    not_carried = [(s["signal"], s["target"], s["rate"], s["note"]) for s in steps if not s["sustained"]]
    assert not not_carried, f"the lowest step is not carried:\n{p.stdout[-2000:]}"
    st.MEASUREMENTS["bench_smoke"] = {f"{s['signal']} {s['target']}": f"{s['rate']}/s carried" for s in steps}
