"""`make soak` in small (two minutes, samples every 10 s, no scheduled faults), so that it
cannot rot: its own project, and the targets a few minutes can judge: no restart, no OOM
kill, every service's peak working set under 80 % of its mem_limit, the first minute's trace and
samples still there at the end, and the Go services' heap read back from Prometheus. (The
slopes need hours: `make soak`, README.)"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e import stack as st
from tests.tooling import REPO, require_image

pytestmark = [pytest.mark.e2e, pytest.mark.signal("soak")]
OUT = REPO / "build" / "soak-smoke.json"


def test_soak_smoke() -> None:
    for var in ("PROMETHEUS_IMAGE", "ALERTMANAGER_IMAGE", "OTELCOL_IMAGE", "JAEGER_IMAGE", "DEMO_IMAGE"):
        require_image(var)
    p = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "2", "--sample", "10", "--no-faults",
                        "--project", "obs-soak-smoke", "--out", str(OUT)], cwd=REPO, capture_output=True,
                       text=True, timeout=900)
    result = json.loads(OUT.read_text())
    st.MEASUREMENTS["soak_smoke"] = {svc: f"peak {v['peak_working_set_mib']:.0f} of {v['mem_limit_mib']:.0f} MiB"
                                     for svc, v in result["services"].items()}
    assert p.returncode == 0 and not result["problems"], p.stdout[-3000:] + p.stderr[-2000:]
    kept = result["first_minute"]
    # The shop's GET /api/products/1 is a trace of 4 spans (tests/e2e/test_traces.py); a
    # minute of 15 s scrapes is 4 samples; the Watchdog notified at least once.
    assert kept["spans"] == {"kept": 4, "of": 4} and kept["samples"]["of"] >= 3, kept
    assert all(n["kept"] == n["of"] > 0 for n in kept.values()), kept
    heaps = {svc: v["live_heap_end_mib"] for svc, v in result["services"].items()}
    assert all(heaps.get(svc) for svc in ("otel-collector", "jaeger", "prometheus", "alertmanager")), heaps
