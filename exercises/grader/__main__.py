"""make exercises | make exercise N= | make grade N= [LIVE=1] [FILE=] | make grade-all"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import grade as g
from .grade import REPO, exercises, find, grade_file, grade_files

MARK = {"PASS": "PASS", "FAIL": "FAIL", "SKIP": "----"}


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def status(ex) -> str:
    saved = g.GRADES / f"{ex.slug}.json"
    if not ex.started():
        return "not started"
    if not saved.exists() or saved.stat().st_mtime < ex.answer.stat().st_mtime:
        return "started, not graded"
    grade = json.loads(saved.read_text())
    verdict = grade.get("verdict", "PASSED" if grade.get("passed") else "NOT YET")
    fails = sum(r["status"] == "FAIL" for r in grade["results"])
    return {"PASSED": "passed", "NOT GRADED": "not graded (a stage could not run)"}.get(
        verdict, f"{fails} criteria to go")


def list_all() -> int:
    print(f"{'N':>2}  {'exercise':44} {'level':>5} {'time':>6}  status")
    for ex in sorted(exercises(), key=lambda e: (e.spec["level"], e.number)):
        print(f"{ex.number:>2}  {ex.spec['title'][:44]:44} {ex.spec['level']:>5} {ex.spec['budget_min']:>4}m  "
              f"{status(ex)}")
    print("\nIn order of difficulty. `make exercise N=1` starts one (your copy goes to "
          f"{_shown(g.workspace())}/); `make grade N=1` grades it (LIVE=1 on the drill stack too).")
    return 0


def show(n: int) -> int:
    ex = find(n)
    print((ex.folder / "README.md").read_text())
    copied = ex.start()
    where = _shown(ex.answer)
    print(("Your copy of the starter: " if copied else "Your file (kept as you left it): ") + where)
    if ex.spec["kind"] in ("rules", "loki-rules"):
        print(f"Write its runbook beside it: {_shown(ex.answer.parent / 'runbook.md')} (sections Meaning, Impact, "
              "Diagnose, Fix; docs/runbooks/ has examples)")
    print(f"Hints, one at a time: {_shown(ex.folder / 'hints.md')}. Then `make grade N={ex.number}`.")
    return 0


def report(grade) -> None:
    stage = None
    for r in grade.results:
        if r.stage != stage:
            stage = r.stage
            print(f"\n  {stage}")
        print(f"    {MARK[r.status]}  {r.criterion}")
        if r.hint:
            label = "hint" if r.status != "SKIP" else "not run" if r.stage in g.OPTIONAL_STAGES else "not graded"
            print(f"          {label}: {r.hint}")
    print(f"\n{grade.summary()}")


def grade(n: int, file: str | None, live: bool) -> int:
    ex = find(n)
    path = Path(file) if file else ex.answer
    if not path.exists():
        print(f"nothing to grade: {_shown(path)} does not exist. `make exercise N={ex.number}` copies the starter "
              "there for you to edit.")
        return 2
    target = None
    if live:
        if not ex.spec.get("live"):
            print(f"exercise {ex.number} has no live drill: grading without it")
        else:
            from drills.target import Target
            target = Target()
    result = grade_file(ex, path, target)
    report(result)
    print(f"grade written to {_shown(result.save())}")
    return 0 if result.passed else 1


def grade_all() -> int:
    started = [ex for ex in exercises() if ex.started()]
    grades = dict(zip([ex.slug for ex in started], grade_files([(ex, ex.answer) for ex in started])))
    counts = {"passed": 0, "not yet": 0, "not graded": 0, "not started": 0}
    print(f"{'N':>2}  {'exercise':44} {'result':12} criteria")
    for ex in sorted(exercises(), key=lambda e: (e.spec["level"], e.number)):
        result = grades.get(ex.slug)
        verdict = "not started" if result is None else result.verdict.lower()
        counts[verdict] += 1
        crit = ""
        if result is not None:
            result.save()
            crit = f"{sum(r.status == 'PASS' for r in result.results)}/{len(result.results)}"
            if result.verdict == "NOT GRADED":
                crit += "  " + "; ".join(result.needs())[:100]
        print(f"{ex.number:>2}  {ex.spec['title'][:44]:44} {verdict:12} {crit}")
    print("\n" + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; details in {_shown(g.GRADES)}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m exercises.grader", description=__doc__)
    ap.add_argument("command", choices=("list", "show", "grade", "grade-all"))
    ap.add_argument("n", nargs="?", type=int)
    ap.add_argument("--file", help="grade this file instead of your copy in the workspace")
    ap.add_argument("--live", action="store_true", help="also on the running drill-profile stack")
    a = ap.parse_args(argv)
    if a.command in ("show", "grade") and a.n is None:
        ap.error(f"{a.command} needs an exercise number (make {'exercise' if a.command == 'show' else 'grade'} N=1)")
    if a.command == "list":
        return list_all()
    if a.command == "show":
        return show(a.n)
    if a.command == "grade":
        return grade(a.n, a.file, a.live)
    return grade_all()


if __name__ == "__main__":
    sys.exit(main())
