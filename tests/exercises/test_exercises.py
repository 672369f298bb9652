"""The grader is itself tested: every exercise's reference answer and its correct variants
pass every criterion; every wrong answer fails, on the criterion it names (`caught_by`);
every criterion catches at least one wrong answer; the untouched starters do not pass.
All answers (answers/, one catalogue) are graded in one batch: each tool runs once per stage."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from exercises.grader import __main__ as cli
from exercises.grader import backtest
from exercises.grader import grade as grader
from exercises.grader.grade import STARTER_MARK, exercises, grade_files
from scripts.validate import image
from tests.tooling import REPO, required_images

from .answers import catalogue

BY_SLUG = {ex.slug: ex for ex in exercises()}
ANSWERS = catalogue()
MIN_WRONG = 8


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Every answer of the catalogue and every starter, graded in one batch: id -> Grade."""
    root = tmp_path_factory.mktemp("answers")
    items, ids = [], []
    for i, a in enumerate(ANSWERS):
        items.append((a.ex, a.write(root / f"a{i:03d}")))
        ids.append(a.id)
    for ex in BY_SLUG.values():
        items.append((ex, ex.starter))
        ids.append(f"{ex.slug}/starter")
    with pytest.MonkeyPatch.context() as mp:  # hermetic: no month of history (an optional stage)
        mp.setattr(backtest, "MANIFEST", root / "no-history-manifest.json")
        return dict(zip(ids, grade_files(items)))


def skip_if_not_graded(g, criterion: str | None = None) -> None:
    """A stage that could not run here (an image missing) skips the test, naming it; an
    image listed in REQUIRED_IMAGES fails it instead."""
    skipped = [r for r in g.not_run() if criterion is None or r.criterion == criterion]
    if not skipped:
        return
    needs = "; ".join(dict.fromkeys(r.hint for r in skipped))
    if any(var in needs for var in required_images()):
        pytest.fail(f"not graded though its image is required: {needs}")
    pytest.skip(needs)


def ids(kind: str) -> list:
    return [pytest.param(a, id=a.id) for a in ANSWERS if a.kind == kind]


@pytest.mark.parametrize("answer", ids("reference") + ids("correct"))
def test_a_right_answer_passes_every_criterion(answer, graded) -> None:
    g = graded[answer.id]
    cli.report(g)
    assert not g.failed(), f"a right answer fails: {g.failed()}"
    skip_if_not_graded(g)
    assert g.verdict == "PASSED" and sum(r.status == "PASS" for r in g.results) >= 6


@pytest.mark.parametrize("answer", ids("wrong"))
def test_a_wrong_answer_is_caught_by_its_criterion(answer, graded) -> None:
    g = graded[answer.id]
    criteria = {r.criterion for r in g.results}
    if answer.caught_by not in criteria:
        skip_if_not_graded(g)
    assert answer.caught_by in criteria, f"no criterion `{answer.caught_by}`: {sorted(criteria)}"
    if answer.caught_by not in g.failed():
        skip_if_not_graded(g, answer.caught_by)
    cli.report(g)
    assert answer.caught_by in g.failed(), f"expected `{answer.caught_by}` to fail; failed: {g.failed()}"
    assert g.verdict == "NOT YET"


@pytest.mark.parametrize("slug", sorted(BY_SLUG))
def test_the_untouched_starter_does_not_pass(slug, graded) -> None:
    g = graded[f"{slug}/starter"]
    assert g.verdict != "PASSED", "the untouched starter passes: the grader checks nothing"


def criteria_of(ex) -> set[str]:
    spec = ex.spec
    names = {c["name"] for key in ("behaviour", "routes", "rendering") for c in spec.get(key, [])}
    return names | {c["name"] for c in (spec.get("inhibition") or {}).get("checks", [])}


@pytest.mark.parametrize("slug", sorted(BY_SLUG))
def test_every_criterion_catches_a_wrong_answer(slug) -> None:
    """A fixture that catches no mistake proves nothing: each criterion is some wrong
    answer's `caught_by`, and every exercise has at least MIN_WRONG wrong answers."""
    ex = BY_SLUG[slug]
    wrong = [a for a in ANSWERS if a.ex.slug == slug and a.kind == "wrong"]
    assert len(wrong) >= MIN_WRONG, f"{slug}: {len(wrong)} wrong answers, fewer than {MIN_WRONG}"
    uncaught = criteria_of(ex) - {a.caught_by for a in wrong}
    assert not uncaught, f"{slug}: no wrong answer is caught by {sorted(uncaught)}"
    assert [a for a in ANSWERS if a.ex.slug == slug and a.kind == "reference"], f"{slug}: no reference answer"


def test_every_exercise_has_its_parts() -> None:
    assert len(BY_SLUG) >= 12
    for slug, ex in BY_SLUG.items():
        for part in ("README.md", "hints.md", ex.spec["file"]):
            assert (ex.folder / part).is_file(), f"{slug}: no {part}"
        assert STARTER_MARK in ex.starter.read_text(), f"{slug}: the shipped starter lost its {STARTER_MARK} mark"
        if ex.spec.get("live"):
            from drills.catalogue import FAULTS
            assert ex.spec["live"]["drill"] in FAULTS, f"{slug}: its live drill is not in drills/catalogue.py"


# ---------------------------------------------------------------- the learner's loop
@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A learner's workspace of its own, and grades kept beside it (the real ones untouched)."""
    monkeypatch.setenv("EXERCISES_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setattr(grader, "GRADES", tmp_path / "grades")
    return tmp_path / "workspace"


def test_the_learner_works_in_a_gitignored_copy(workspace, capsys) -> None:
    ex = BY_SLUG["02-error-ratio"]
    starter = ex.starter.read_text()
    assert cli.main(["show", "2"]) == 0
    out = capsys.readouterr().out
    copy = workspace / "02-error-ratio" / "rules.yml"
    assert "ShopErrorRatioHigh" in out and str(copy) in out and copy.read_text() == starter
    copy.write_text("# mine\n")
    assert cli.main(["show", "2"]) == 0 and copy.read_text() == "# mine\n", "`make exercise` overwrote the work"
    assert ex.starter.read_text() == starter
    ignored = subprocess.run(["git", "check-ignore", "-q", "workspace/02-error-ratio/rules.yml"], cwd=REPO)
    assert ignored.returncode == 0, "the default workspace is not gitignored"


def test_make_grade_exits_non_zero_unless_passed(workspace, capsys) -> None:
    assert cli.main(["grade", "2"]) == 2 and "make exercise N=2" in capsys.readouterr().out
    assert cli.main(["show", "2"]) == 0
    assert cli.main(["grade", "2"]) == 1, "the starter's grade exits 0"
    assert "NOT YET" in capsys.readouterr().out
    reference = next(a for a in ANSWERS if a.ex.slug == "02-error-ratio" and a.kind == "reference")
    reference.write(workspace / "02-error-ratio")
    code = cli.main(["grade", "2"])
    out = capsys.readouterr().out
    if "NOT GRADED" in out and "PROMETHEUS_IMAGE" not in required_images():
        pytest.skip(out.strip().splitlines()[-2])
    assert code == 0 and "PASSED" in out, out


def test_a_stage_that_cannot_run_leaves_it_not_graded(workspace, monkeypatch, capsys) -> None:
    """Without the image a stage needs, the answer is NOT GRADED: `make grade` exits non-zero
    and names the image, `make grade-all` counts it apart."""
    monkeypatch.setenv("LOKI_IMAGE", "grader-test/no-such-loki:0")
    monkeypatch.setenv("PROMETHEUS_IMAGE", "grader-test/no-such-prometheus:0")
    for slug in ("12-log-alert", "02-error-ratio"):
        reference = next(a for a in ANSWERS if a.ex.slug == slug and a.kind == "reference")
        reference.write(workspace / slug)
        n = int(slug[:2])
        assert cli.main(["grade", str(n)]) == 1
        out = capsys.readouterr().out
        assert "NOT GRADED" in out and "not graded: needs" in out and image(
            "LOKI_IMAGE" if n == 12 else "PROMETHEUS_IMAGE") in out, out
    assert cli.main(["grade-all"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"0 passed, 0 not yet, 2 not graded, 10 not started", out), out
    assert cli.main(["list"]) == 0
    assert capsys.readouterr().out.count("not graded (a stage could not run)") == 2


def test_the_list_is_by_difficulty(workspace, capsys) -> None:
    assert cli.main(["list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if re.match(r"\s*\d+\s", line)]
    levels = [BY_SLUG[next(s for s in BY_SLUG if int(s[:2]) == int(r[0]))].spec["level"] for r in rows]
    assert len(rows) == len(BY_SLUG) and levels == sorted(levels)
    assert all("not started" in " ".join(r) for r in rows)


def test_the_learners_path_lists_every_exercise() -> None:
    guide = (REPO / "docs" / "alert-training.md").read_text()
    for slug, ex in BY_SLUG.items():
        assert f"| {ex.number} | `{slug}` | {ex.spec['level']} |" in guide, f"docs/alert-training.md misses {slug}"


# ---------------------------------------------------------------- names that exist
SERIES_NAME = re.compile(r"^([a-zA-Z_:][\w:]*)\{")
METRIC_PREFIXES = ("demo_", "otelcol_", "traces_span_", "alertmanager_", "prometheus_")
RECORDED = re.compile(r"[a-z_]+:[a-z_]+:[a-z0-9_]+")  # a recording rule's level:metric:operation


def fixture_metric_names(ex) -> set[str]:
    return {SERIES_NAME.match(s["series"]).group(1) for c in ex.spec.get("behaviour", []) for s in c.get("series", [])}


def readme_metric_names(text: str) -> set[str]:
    """Metric names a task or its hints write in `code`: the known prefixes, a recording
    rule's level:name:operation, or `up` (quoted strings and paths left out)."""
    names = set()
    for code in re.findall(r"`([^`\n]+)`", text):
        code = re.sub(r"\S*/\S*", " ", re.sub(r'"[^"]*"', " ", code))
        for token in re.findall(r"[a-zA-Z_:][\w:]*", code):
            if token == "up" or (token.startswith(METRIC_PREFIXES) and not token.endswith("_")) or \
                    RECORDED.fullmatch(token):
                names.add(token)
    return names


def exists(name: str, known: set[str]) -> bool:
    return name in known or name + "_bucket" in known  # a histogram by its family name


def test_metric_names_check_catches_a_name_that_does_not_exist() -> None:
    from tests.metric_catalog import known_metric_names

    known = known_metric_names()
    assert readme_metric_names("count `otelcol_receiver_refused_spans_total{job}` and `up`") - known == {
        "otelcol_receiver_refused_spans_total"}


@pytest.mark.parametrize("slug", sorted(BY_SLUG))
def test_every_metric_name_an_exercise_uses_exists(slug) -> None:
    """Fixtures, the right answers and the task's own text name only metrics the pinned
    catalogue knows (tests/metric_catalog_data/): a rule written from them works live."""
    from tests.metric_catalog import known_metric_names, metric_names_in

    ex = BY_SLUG[slug]
    known = known_metric_names()
    used = {f"fixture: {n}" for n in fixture_metric_names(ex)}
    used |= {f"{p.name}: {n}" for p in (ex.folder / "README.md", ex.folder / "hints.md")
             for n in readme_metric_names(p.read_text())}
    if ex.spec["kind"] == "rules":
        for a in ANSWERS:
            if a.ex.slug == slug and a.kind in ("reference", "correct"):
                exprs = [r["expr"] for g in yaml.safe_load(a.text())["groups"] for r in g["rules"]]
                used |= {f"{a.kind} {a.name}: {n}" for e in exprs for n in metric_names_in(str(e))}
                assert "__name__" not in " ".join(map(str, exprs)), f"{a.id}: a name regex names no metric"
    unknown = sorted(u for u in used if not exists(u.split(": ", 1)[1], known))
    assert not unknown, f"{slug} names metrics the catalogue does not know: {unknown}"


def test_the_live_stage_reads_the_drills_alert_only() -> None:
    """The rules API answer as Prometheus (and Loki's ruler) gives it: the loki exporter's
    queue filling on a stack without Loki is not the jaeger-down drill's page."""
    from exercises.grader.live import rule_states

    def alert(exporter, state):
        return {"labels": {"alertname": "CollectorQueueFillingUp", "exporter": exporter}, "state": state}
    answer = {"status": "success", "data": {"groups": [{"name": "exercise-05", "rules": [
        {"name": "CollectorQueueFillingUp", "type": "alerting", "state": "firing",
         "alerts": [alert("otlp_http/loki", "firing")]},
        {"name": "Other", "type": "alerting", "state": "inactive", "alerts": []}]}]}}
    jaeger = {"exporter": "otlp_grpc/jaeger"}
    assert rule_states(answer, "CollectorQueueFillingUp", jaeger) == ["inactive"]
    assert rule_states(answer, "CollectorQueueFillingUp", {}) == ["firing"]
    answer["data"]["groups"][0]["rules"][0]["alerts"].append(alert("otlp_grpc/jaeger", "pending"))
    assert rule_states(answer, "CollectorQueueFillingUp", jaeger) == ["pending"]
    assert rule_states(answer, "Missing", jaeger) == []


def test_an_optional_stage_not_run_is_noted_not_counted() -> None:
    """The backtest runs only over a month `make history` loaded: without one the answer is
    graded on the other stages (and says so); any other stage not run leaves it NOT GRADED."""
    g = grader.Grade("01-target-down", "rules.yml")
    g.add("behaviour", "fires", True)
    g.skip("backtest", "over a month of history", "no month of history here: `make history` loads one")
    assert g.verdict == "PASSED" and "not run (optional): backtest" in g.summary()
    g.skip("static", "promtool check rules", "needs PROMETHEUS_IMAGE: ...")
    assert g.verdict == "NOT GRADED" and g.needs() == ["needs PROMETHEUS_IMAGE: ..."]


def test_the_loki_stage_applies_for_and_keep_firing_for() -> None:
    """Over a range query's answer (Loki's matrix shape), `for:` needs the series at every
    step of the hold, `keep_firing_for:` keeps it after it is gone; and the fixture's lines
    expand as the check file says."""
    from exercises.grader.loki import firing_at, lines

    at = 10_000

    def series(*ago):
        return {"metric": {"service_name": "shop"}, "values": [[at - a, "4"] for a in sorted(ago, reverse=True)]}
    now_and_30s = [series(0, 15, 30)]
    assert firing_at(now_and_30s, at, 0, 0) == [{"service_name": "shop"}]
    assert firing_at(now_and_30s, at, 30, 0) and not firing_at(now_and_30s, at, 45, 0)
    gone_a_minute = [series(60, 75)]
    assert not firing_at(gone_a_minute, at, 0, 0) and firing_at(gone_a_minute, at, 0, 60)
    assert not firing_at(gone_a_minute, at, 15, 45) and firing_at(gone_a_minute, at, 15, 60)
    got = lines({"lines": [{"at": "1m", "count": 3, "every": "30s", "line": "x", "metadata": {"exception_type": "E"}}]}, 0)
    assert got == [[str(60 * 10**9), "x", {"exception_type": "E"}], [str(90 * 10**9), "x", {"exception_type": "E"}],
                   [str(120 * 10**9), "x", {"exception_type": "E"}]]
