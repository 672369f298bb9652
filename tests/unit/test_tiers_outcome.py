"""The tier runner's verdict: a tier that collects nothing fails unless the user picked tests."""
from __future__ import annotations

from tests import tiers


def _outcome(code: int, args: list[str]) -> tiers.Outcome:
    return tiers.Outcome(tiers.TIERS[0], code, 1.0, {}, tiers.narrowed(args))


def test_nothing_collected_fails_a_whole_tier_and_passes_a_narrowed_run():
    assert not _outcome(5, []).ok
    assert not _outcome(5, ["-x", "--maxfail=2"]).ok
    assert _outcome(5, ["-k", "flood"]).ok and _outcome(5, ["-mnot slow"]).ok
    assert _outcome(5, ["tests/unit/test_flood.py::test_shop_flood"]).ok
    assert _outcome(0, []).ok and not _outcome(1, ["-k", "x"]).ok
