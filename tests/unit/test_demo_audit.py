"""inventory's stock audit, a batch job: a success sets the last-success timestamp and
counts a success; with the store down (the inventory-outage fault) runs count failures and
the timestamp stays where it was (exercises/06-batch-job alerts on its age)."""
from __future__ import annotations

import asyncio
import time

from demo_app.faults import Faults
from demo_app.inventory import Store, run_audits
from demo_app.telemetry import Telemetry


def sample(tel: Telemetry, name: str, **labels) -> float | None:
    return tel.metrics.registry.get_sample_value(name, labels)


async def _run_for(store: Store, tel: Telemetry, seconds: float) -> None:
    task = asyncio.create_task(run_audits(store, tel, interval_s=0.05))
    await asyncio.sleep(seconds)
    task.cancel()


def test_the_audit_reports_successes_and_failures() -> None:
    tel, faults = Telemetry("inventory", enabled=False), Faults()
    store = Store(":memory:", tel, faults)
    before = time.time()
    asyncio.run(_run_for(store, tel, 0.3))
    last = sample(tel, "demo_job_last_success_timestamp_seconds", job_name="stock-audit")
    ok = sample(tel, "demo_job_runs_total", job_name="stock-audit", result="success")
    assert last is not None and last >= before and ok >= 2
    faults.outage = True
    asyncio.run(_run_for(store, tel, 0.3))
    assert sample(tel, "demo_job_runs_total", job_name="stock-audit", result="failure") >= 2
    assert sample(tel, "demo_job_last_success_timestamp_seconds", job_name="stock-audit") == last
    assert sample(tel, "demo_job_runs_total", job_name="stock-audit", result="success") == ok
