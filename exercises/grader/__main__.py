"""make exercises | make exercise N= | make grade N= [LIVE=1] [FILE=] | make grade-all"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .grade import GRADES, REPO, exercises, find, grade_file

MARK = {"PASS": "PASS", "FAIL": "FAIL", "SKIP": "skip"}


def status(ex) -> str:
    saved = GRADES / f"{ex.slug}.json"
    if not ex.started():
        return "not started"
    if not saved.exists():
        return "started, not graded"
    g = json.loads(saved.read_text())
    fails = sum(r["status"] == "FAIL" for r in g["results"])
    return "passed" if g["passed"] else f"{fails} criteria to go"


def list_all() -> int:
    print(f"{'N':>2}  {'exercise':40} {'level':>5} {'time':>6}  status")
    for ex in exercises():
        print(f"{ex.number:>2}  {ex.spec['title'][:40]:40} {ex.spec['level']:>5} {ex.spec['budget_min']:>4}m  "
              f"{status(ex)}")
    print("\n`make exercise N=1` shows one; `make grade N=1` grades your file (LIVE=1 on the drill stack too).")
    return 0


def show(n: int) -> int:
    ex = find(n)
    print((ex.folder / "README.md").read_text())
    print(f"Write your answer in {ex.answer.relative_to(REPO)}"
          + (f" and its runbook in {(ex.folder / 'runbook.md').relative_to(REPO)}" if ex.spec["kind"] in (
              "rules", "loki-rules") else "")
          + f"; hints: {(ex.folder / 'hints.md').relative_to(REPO)}; then `make grade N={ex.number}`.")
    return 0


def report(g) -> None:
    stage = None
    for r in g.results:
        if r.stage != stage:
            stage = r.stage
            print(f"\n  {stage}")
        print(f"    {MARK[r.status]}  {r.criterion}")
        if r.hint:
            print(f"          {'why' if r.status == 'SKIP' else 'hint'}: {r.hint}")
    print(f"\n{g.summary()}")


def grade(n: int, file: str | None, live: bool) -> int:
    ex = find(n)
    target = None
    if live:
        from drills.target import Target
        target = Target()
    g = grade_file(ex, Path(file) if file else ex.answer, target)
    report(g)
    print(f"grade written to {g.save().relative_to(REPO)}")
    return 0 if g.passed else 1


def grade_all() -> int:
    rows = []
    for ex in exercises():
        if not ex.started():
            rows.append((ex, "not started", None))
            continue
        g = grade_file(ex, ex.answer)
        g.save()
        rows.append((ex, "passed" if g.passed else "not yet", g))
    print(f"{'N':>2}  {'exercise':40} {'result':12} criteria")
    for ex, verdict, g in rows:
        crit = "" if g is None else f"{sum(r.status == 'PASS' for r in g.results)}/" \
                                    f"{sum(r.status != 'SKIP' for r in g.results)}"
        print(f"{ex.number:>2}  {ex.spec['title'][:40]:40} {verdict:12} {crit}")
    done = sum(v == "passed" for _, v, _ in rows)
    print(f"\n{done} of {len(rows)} exercises passed; details in {GRADES.relative_to(REPO)}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m exercises.grader", description=__doc__)
    ap.add_argument("command", choices=("list", "show", "grade", "grade-all"))
    ap.add_argument("n", nargs="?", type=int)
    ap.add_argument("--file", help="grade this file instead of the exercise's own")
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
