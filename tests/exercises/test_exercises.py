"""The grader is itself tested: every exercise's reference solution passes every criterion,
every wrong answer fails, and on the criterion its header names (`caught by:`). The
answers sit here, not under exercises/, so that a learner does not stumble on them."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from exercises.grader import __main__ as cli
from exercises.grader.grade import STARTER_MARK, exercises, grade_file
from tests.tooling import require_image

ANSWERS = Path(__file__).resolve().parent / "answers"
RUNBOOK = "# {name}\n\n## Meaning\nx\n\n## Impact\nx\n\n## Diagnose\nx\n\n## Fix\nx\n"
IMAGES = {"rules": ("PROMETHEUS_IMAGE",), "loki-rules": (), "alertmanager": ("ALERTMANAGER_IMAGE",),
          "template": ("ALERTMANAGER_IMAGE",)}
BY_SLUG = {ex.slug: ex for ex in exercises()}


def answers(pattern: str) -> list:
    return [pytest.param(BY_SLUG[p.parent.name], p, id=f"{p.parent.name}/{p.stem}")
            for p in sorted(ANSWERS.glob(f"*/{pattern}"))]


def graded(ex, answer: Path, tmp_path: Path):
    """Grades `answer` as the learner's file, a runbook beside it (as a learner would have)."""
    for var in IMAGES[ex.spec["kind"]]:
        require_image(var)
    (tmp_path / "runbook.md").write_text(RUNBOOK.format(name=ex.spec.get("alertname")))
    target = tmp_path / ex.spec["file"]
    shutil.copy(answer, target)
    g = grade_file(ex, target)
    cli.report(g)
    return g


def test_every_exercise_has_its_parts_and_answers() -> None:
    assert len(BY_SLUG) >= 12
    for slug, ex in BY_SLUG.items():
        for part in ("README.md", "hints.md", ex.spec["file"]):
            assert (ex.folder / part).is_file(), f"{slug}: no {part}"
        assert STARTER_MARK in ex.answer.read_text(), f"{slug}: the starter lost its {STARTER_MARK} mark"
        assert list((ANSWERS / slug).glob("reference.*")), f"{slug}: no reference answer"
        assert len(list((ANSWERS / slug).glob("wrong-*"))) >= 3, f"{slug}: fewer than three wrong answers"


@pytest.mark.parametrize(("ex", "answer"), answers("reference.*"))
def test_the_reference_passes_every_criterion(ex, answer: Path, tmp_path: Path) -> None:
    g = graded(ex, answer, tmp_path)
    assert not g.failed(), f"the reference fails: {g.failed()}"
    assert sum(r.status == "PASS" for r in g.results) >= 4


@pytest.mark.parametrize(("ex", "answer"), answers("wrong-*"))
def test_a_wrong_answer_is_caught_by_its_criterion(ex, answer: Path, tmp_path: Path) -> None:
    caught_by = re.search(r"caught by: (.+?)(?: \*/\}\})?$", answer.read_text(), re.M).group(1).strip()
    g = graded(ex, answer, tmp_path)
    assert not g.passed
    assert caught_by in g.failed(), f"expected `{caught_by}` to fail; failed: {g.failed()}"


@pytest.mark.parametrize("slug", sorted(BY_SLUG))
def test_the_starter_file_does_not_pass(slug: str, tmp_path: Path) -> None:
    ex = BY_SLUG[slug]
    g = graded(ex, ex.answer, tmp_path)
    assert not g.passed, "the untouched starter passes: the grader checks nothing"


def test_the_commands_list_and_show(capsys) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(ex.spec["title"][:20] in out for ex in BY_SLUG.values()) and "not started" in out
    assert cli.main(["show", "2"]) == 0
    assert "ShopErrorRatioHigh" in capsys.readouterr().out


def test_the_learners_path_lists_every_exercise() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "alert-training.md").read_text()
    for slug, ex in BY_SLUG.items():
        assert f"| {ex.number} | `{slug}` | {ex.spec['level']} |" in guide, f"docs/alert-training.md misses {slug}"
