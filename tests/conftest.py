"""Suite-wide: the last line of every run says what did not run and why.

A check that cannot get its tool or image skips and names it (tests/tooling.py); this
gathers those reasons, plus tiers deselected as a whole (no Docker engine), into one line,
so a green run cannot hide what it did not prove.
"""
from __future__ import annotations

import re
from collections import Counter

import pytest

_not_run: Counter[str] = Counter()


def _reason(report: pytest.TestReport) -> str:
    text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    text = text.removeprefix("Skipped: ")
    # One bucket per missing image or tool, not per test: drop the per-test detail.
    m = re.search(r"image (\S+) \((\w+)\)", text)
    if m:
        return f"image {m.group(1)} missing"
    return text.split(";")[0].strip()[:160]


def pytest_configure(config: pytest.Config) -> None:
    # The stack tiers' report (signals proven, measurements), whichever tier runs alone.
    from tests.e2e import report

    config.pluginmanager.register(report, "stack-report")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.when in ("setup", "call"):
        _not_run[_reason(report)] += 1


def pytest_deselected(items: list[pytest.Item]) -> None:
    # conftest files deselect a whole tier with a reason they record themselves (e2e).
    for item in items:
        reason = getattr(item.config, "_tier_deselected_reason", None)
        if reason:
            _not_run[reason] += 1


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not _not_run:
        terminalreporter.write_line("not run: nothing (every check ran)", green=True)
        return
    total = sum(_not_run.values())
    parts = "; ".join(f"{reason} ({n})" for reason, n in _not_run.most_common())
    terminalreporter.write_line(f"not run: {total} check(s): {parts}", yellow=True)
