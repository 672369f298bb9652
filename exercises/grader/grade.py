"""Grades answers: stages of criteria, each PASS, FAIL (with a hint) or SKIP (with what it
needs). Many answers are graded together (the grader's own tests grade a hundred): each
real tool runs once per stage for all of them, not once per answer."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from scripts.validate import REPO

from . import alertmanager, backtest, live, loki, promql, template

HERE = Path(__file__).resolve().parent
EXERCISES = REPO / "exercises"
CHECKS = HERE / "checks"
GRADES = REPO / "build" / "grades"
STARTER_MARK = "TODO(learner)"
# Stages that run only where their data is (the backtest: a month `make history` loaded):
# without it they are noted as not run, and the answer is graded on the other stages.
OPTIONAL_STAGES = ("backtest",)


def workspace() -> Path:
    """Where the learner's copies live (gitignored): the tracked starters stay as shipped,
    so `make test` holds whatever the learner writes."""
    return Path(os.environ.get("EXERCISES_WORKSPACE") or REPO / "workspace")


@dataclass
class Result:
    stage: str
    criterion: str
    status: str          # PASS, FAIL or SKIP
    hint: str = ""       # FAIL: what to look at; SKIP: what the stage needs


@dataclass
class Exercise:
    slug: str             # "02-error-ratio"
    spec: dict

    @property
    def number(self) -> int:
        return int(self.slug.split("-", 1)[0])

    @property
    def folder(self) -> Path:
        return EXERCISES / self.slug

    @property
    def starter(self) -> Path:
        """The shipped file the learner starts from (never edited)."""
        return self.folder / self.spec["file"]

    @property
    def answer(self) -> Path:
        """The learner's copy, in the workspace."""
        return workspace() / self.slug / self.spec["file"]

    def started(self) -> bool:
        return self.answer.exists()

    def start(self) -> bool:
        """Copies the starter into the workspace; False when the learner's copy exists."""
        if self.answer.exists():
            return False
        self.answer.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.starter, self.answer)
        return True


def exercises() -> list[Exercise]:
    return [Exercise(p.stem, yaml.safe_load(p.read_text())) for p in sorted(CHECKS.glob("[0-9][0-9]-*.yml"))]


def find(n: int | str) -> Exercise:
    for ex in exercises():
        if ex.number == int(n):
            return ex
    raise SystemExit(f"no exercise {n}: `make exercises` lists them")


@dataclass
class Grade:
    exercise: str
    file: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    live_seconds: dict = field(default_factory=dict)

    def add(self, stage: str, criterion: str, ok: bool | None, hint: str = "") -> None:
        status = "SKIP" if ok is None else "PASS" if ok else "FAIL"
        self.results.append(Result(stage, criterion, status, "" if ok else hint))

    def skip(self, stage: str, criterion: str, needs: str) -> None:
        self.results.append(Result(stage, criterion, "SKIP", needs))

    def not_run(self, optional: bool = False) -> list[Result]:
        return [r for r in self.results if r.status == "SKIP" and (r.stage in OPTIONAL_STAGES) == optional]

    @property
    def verdict(self) -> str:
        """PASSED only when every stage ran and every criterion held; a stage that could
        not run leaves the answer NOT GRADED, never passed (an optional stage excepted)."""
        if any(r.status == "FAIL" for r in self.results):
            return "NOT YET"
        if self.not_run() or not any(r.status == "PASS" for r in self.results):
            return "NOT GRADED"
        return "PASSED"

    @property
    def passed(self) -> bool:
        return self.verdict == "PASSED"

    def failed(self) -> list[str]:
        return [r.criterion for r in self.results if r.status == "FAIL"]

    def needs(self) -> list[str]:
        """What the stages that did not run need, each once."""
        return list(dict.fromkeys(r.hint for r in self.not_run()))

    def summary(self) -> str:
        n = {s: sum(r.status == s for r in self.results) for s in ("PASS", "FAIL")}
        line = (f"{self.exercise}: {self.verdict} - {n['PASS']} passed, {n['FAIL']} failed, "
                f"{len(self.not_run())} not graded ({self.seconds:.1f} s)")
        if self.verdict == "NOT GRADED":
            line += "\n  not graded: " + "; ".join(self.needs() or ["no criterion ran"])
        optional = self.not_run(optional=True)
        if optional:
            line += "\n  not run (optional): " + "; ".join(dict.fromkeys(f"{r.stage}: {r.hint}" for r in optional))
        return line

    def save(self) -> Path:
        GRADES.mkdir(parents=True, exist_ok=True)
        path = GRADES / f"{self.exercise}.json"
        path.write_text(json.dumps({**asdict(self), "verdict": self.verdict, "passed": self.passed,
                                    "at": time.time()}, indent=2) + "\n")
        return path


@dataclass
class Submission:
    """One answer in a batch: its exercise, text, grade and its own folder for the tools."""
    ex: Exercise
    path: Path
    grade: Grade
    dir: Path
    text: str = ""
    rule: dict | None = None      # the alert rule under grading (rule kinds), once static passed

    @property
    def runbook(self) -> Path:
        return self.path.parent / "runbook.md"  # beside the graded file


# ---------------------------------------------------------------- the stages, by kind
def grade_live(subs: list[Submission], live_target, ruler: live.Ruler) -> None:
    """One answer after another (each drill takes the stack), those that passed so far."""
    if live_target is None:
        return
    for s in subs:
        if s.ex.spec.get("live") and not s.grade.failed():
            live.run(s.grade, s.ex, s.text, live_target, ruler)


def grade_rules(subs: list[Submission], live_target) -> None:
    graded = promql.static(subs)
    promql.behaviour(graded)
    for s in graded:
        backtest.run(s.grade, s.ex, s.text)
    grade_live(graded, live_target, live.PROMETHEUS)


def grade_loki_rules(subs: list[Submission], live_target) -> None:
    graded = loki.static(subs)
    loki.behaviour(graded)
    grade_live(graded, live_target, live.LOKI)


def grade_alertmanager(subs: list[Submission], live_target) -> None:
    valid = alertmanager.static(subs)
    alertmanager.routing(valid)
    alertmanager.inhibition(valid)


def grade_template(subs: list[Submission], live_target) -> None:
    template.render(subs)


KINDS = {"rules": grade_rules, "loki-rules": grade_loki_rules, "alertmanager": grade_alertmanager,
         "template": grade_template}


def grade_files(items: list[tuple[Exercise, Path]], live_target=None) -> list[Grade]:
    """Grades each (exercise, file), in one run of each tool per stage; the live stage
    (only with a target, one answer after another) needs the running drill stack."""
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    work.chmod(0o755)  # the tools run as their images' users
    subs = []
    for i, (ex, path) in enumerate(items):
        d = work / f"s{i:03d}"
        d.mkdir()
        d.chmod(0o755)
        subs.append(Submission(ex, path, Grade(ex.slug, str(path)), d, path.read_text() if path.exists() else ""))
    try:
        for kind, stages in KINDS.items():
            group = [s for s in subs if s.ex.spec["kind"] == kind]
            if group:
                stages(group, live_target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = round(time.monotonic() - t0, 1)
    for s in subs:
        s.grade.seconds = seconds
    return [s.grade for s in subs]


def grade_file(ex: Exercise, path: Path, live_target=None) -> Grade:
    """All stages for `path` (the learner's file, or any other); live only with a target."""
    return grade_files([(ex, path)], live_target)[0]
