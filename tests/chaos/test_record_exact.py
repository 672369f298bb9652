"""`make record-drill` writes every value exactly: promtool, reading the generated notation
back, gets timestamps, counters past 10^6 and fractions to the last digit (it rounded to 6
significant digits: 1765000003 became 1.765e+09)."""
from __future__ import annotations

import pytest
import yaml

from drills import record
from scripts.validate import missing_image

pytestmark = pytest.mark.skipif(bool(missing_image("PROMETHEUS_IMAGE")),
                                reason=f"PROMETHEUS_IMAGE: {missing_image('PROMETHEUS_IMAGE')}")

SERIES = {
    # a timestamp-like gauge (process_start_time_seconds), constant then restarted
    'start_time{job="shop"}': [1765000003.25] * 4 + [None] + [1765000611.5] * 3,
    # a counter past 10^10, steps of 7 then of 13
    'requests_total{job="shop"}': [12345678901.0 + 7 * i for i in range(4)] + [12345678929.0 + 13 * i for i in range(4)],
    # fractions whose repeated sum is not a round number
    'ratio{job="shop"}': [0.1, 0.2, 0.30000000000000004, 0.4, 0.123456789, 1e-9, 2.5e-7, 123456.7890123],
}


def test_recorded_values_read_back_exactly(tmp_path) -> None:
    tests = []
    for name, values in SERIES.items():
        for i, v in enumerate(values):
            if v is not None:
                # promtool compares with a relative tolerance: a difference against 0 is exact.
                tests.append({"expr": f"{name} - {v!r}", "eval_time": f"{i}m",
                              "exp_samples": [{"labels": name[name.index("{"):], "value": 0}]})
    doc = {"rule_files": [], "evaluation_interval": "1m",
           "tests": [{"interval": "1m", "promql_expr_test": tests,
                      "input_series": [{"series": k, "values": record.expanding(v)} for k, v in SERIES.items()]}]}
    (tmp_path / "tests").mkdir()
    test_file = tmp_path / "tests" / "exact.test.yml"
    test_file.write_text(yaml.safe_dump(doc, sort_keys=False, width=300))
    tmp_path.chmod(0o755)
    for p in (tmp_path / "tests", test_file):
        p.chmod(0o755 if p.is_dir() else 0o644)
    result = record.promtool(test_file, tmp_path)
    assert result.returncode == 0, test_file.read_text() + result.stdout[-3000:] + result.stderr[-2000:]
    assert "1765000003.25+0x3" in test_file.read_text() and "12345678901+7x4" in test_file.read_text()
