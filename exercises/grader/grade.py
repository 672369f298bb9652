"""Grades one exercise: stages of criteria, each PASS, FAIL (with a hint) or SKIP (with why)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from scripts.validate import REPO, Check, docker_cmd, image, missing_image

from . import backtest, inhibition, live, loki
from .contract import contract

HERE = Path(__file__).resolve().parent
EXERCISES = REPO / "exercises"
CHECKS = HERE / "checks"
GRADES = REPO / "build" / "grades"
STARTER_MARK = "TODO(learner)"


@dataclass
class Result:
    stage: str
    criterion: str
    status: str          # PASS, FAIL or SKIP
    hint: str = ""


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
    def answer(self) -> Path:
        """The file the learner edits."""
        return self.folder / self.spec["file"]

    def started(self) -> bool:
        """The starter file carries STARTER_MARK until the learner makes it theirs."""
        return self.answer.exists() and STARTER_MARK not in self.answer.read_text()


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

    @property
    def passed(self) -> bool:
        return all(r.status != "FAIL" for r in self.results) and any(r.status == "PASS" for r in self.results)

    def failed(self) -> list[str]:
        return [r.criterion for r in self.results if r.status == "FAIL"]

    def summary(self) -> str:
        n = {s: sum(r.status == s for r in self.results) for s in ("PASS", "FAIL", "SKIP")}
        return (f"{self.exercise}: {'PASSED' if self.passed else 'NOT YET'} - {n['PASS']} passed, "
                f"{n['FAIL']} failed, {n['SKIP']} skipped ({self.seconds:.1f} s)")

    def save(self) -> Path:
        GRADES.mkdir(parents=True, exist_ok=True)
        path = GRADES / f"{self.exercise}.json"
        path.write_text(json.dumps({**asdict(self), "passed": self.passed, "at": time.time()}, indent=2) + "\n")
        return path


# ---------------------------------------------------------------- tools
def tool(var: str, entrypoint: str, args: list[str], mounts: dict[Path, str]) -> subprocess.CompletedProcess | str:
    """The real tool from the stack's image, or why it cannot run here."""
    why = missing_image(var)
    if why:
        return why
    cmd = docker_cmd(Check(entrypoint, var, entrypoint, args, mounts), image(var))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _workdir() -> Path:
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    work.chmod(0o755)  # the tools run as their image's user
    return work


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)


# ---------------------------------------------------------------- static
def alert_rules(text: str) -> list[dict]:
    doc = yaml.safe_load(text) or {}
    return [r for g in doc.get("groups", []) or [] for r in g.get("rules", []) or [] if "alert" in r]


def static_rules(grade: Grade, ex: Exercise, text: str, work: Path, runbook: Path) -> dict | None:
    _write(work / "rules.yml", text)
    p = tool("PROMETHEUS_IMAGE", "promtool", ["check", "rules", "/w/rules.yml"], {work: "/w"})
    if isinstance(p, str):
        grade.add("static", "promtool check rules", None, p)
        return None
    grade.add("static", "promtool check rules", p.returncode == 0,
              (p.stdout + p.stderr).strip().splitlines()[-1] if p.returncode else "")
    if p.returncode:
        return None
    rules = [r for r in alert_rules(text) if r["alert"] == ex.spec["alertname"]]
    grade.add("static", "one alert rule of that name", len(rules) <= 1,
              "write one rule; `or` joins conditions in one expression")
    rule = rules[0] if rules else None
    contract(grade, ex, rule, runbook)
    return rule


# ---------------------------------------------------------------- behaviour
def fixture(crit: dict, alertname: str) -> dict:
    """One criterion as a promtool test file over the learner's rules."""
    by = crit.get("by", [])
    expr = (f"count by ({', '.join(by)}) " if by else "count ") + \
        f'(ALERTS{{alertname="{alertname}", alertstate="firing"}})'
    tests = []
    for ev in crit["evals"]:
        samples = []
        for f in ev.get("firing", []):
            f = dict(f)
            count = f.pop("count", 1)
            labels = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(f.items())) + "}"
            samples.append({"labels": labels, "value": count} if f else {"value": count})
        tests.append({"expr": expr, "eval_time": ev["at"], "exp_samples": samples})
    return {"rule_files": ["rules.yml"], "evaluation_interval": crit.get("evaluation_interval", "15s"),
            "tests": [{"interval": crit.get("interval", "15s"), "input_series": crit["series"],
                       "promql_expr_test": tests}]}


def behaviour(grade: Grade, ex: Exercise, work: Path) -> None:
    crits = ex.spec.get("behaviour", [])
    if not crits:
        return
    names = []
    for i, crit in enumerate(crits):
        name = f"c{i:02d}.yml"
        _write(work / name, yaml.safe_dump(fixture(crit, ex.spec["alertname"]), sort_keys=False))
        names.append(name)
    p = tool("PROMETHEUS_IMAGE", "promtool", ["test", "rules", *[f"/w/{n}" for n in names]], {work: "/w"})
    if isinstance(p, str):
        for crit in crits:
            grade.add("behaviour", crit["name"], None, p)
        return
    # stdout: "Processing test file: /w/cNN.yml" then "  SUCCESS" for each file that passed.
    passed, current = set(), None
    for line in p.stdout.splitlines():
        if m := re.match(r"Processing test file: /w/(c\d+\.yml)", line.strip()):
            current = m.group(1)
        elif line.strip() == "SUCCESS" and current:
            passed.add(current)
    for name, crit in zip(names, crits):
        grade.add("behaviour", crit["name"], name in passed, crit["hint"])


# ---------------------------------------------------------------- Alertmanager
def static_alertmanager(grade: Grade, text: str, work: Path) -> bool:
    _write(work / "alertmanager.yml", text)
    p = tool("ALERTMANAGER_IMAGE", "amtool", ["check-config", "/w/alertmanager.yml"], {work: "/w"})
    if isinstance(p, str):
        grade.add("static", "amtool check-config", None, p)
        return False
    grade.add("static", "amtool check-config", p.returncode == 0, (p.stdout + p.stderr).strip()[-300:])
    return p.returncode == 0


def routing(grade: Grade, ex: Exercise, work: Path) -> None:
    for case in ex.spec.get("routes", []):
        labels = [f"{k}={v}" for k, v in case["labels"].items()]
        p = tool("ALERTMANAGER_IMAGE", "amtool", ["config", "routes", "test", "--config.file=/w/alertmanager.yml",
                                                  f"--verify.receivers={case['receiver']}", *labels], {work: "/w"})
        if isinstance(p, str):
            grade.add("routing", case["name"], None, p)
        else:
            grade.add("routing", case["name"], p.returncode == 0, case["hint"])


def render(grade: Grade, ex: Exercise, text: str, work: Path) -> None:
    """amtool renders the learner's templates with its own example group: one firing alert
    (instance=foo.bar:1234) and one resolved (foo=bar, baz=qux)."""
    _write(work / "notification.tmpl", text)
    outputs = {}
    for name in ex.spec["templates"]:
        p = tool("ALERTMANAGER_IMAGE", "amtool", ["template", "render", "--template.glob=/w/notification.tmpl",
                                                  f'--template.text={{{{ template "{name}" . }}}}'], {work: "/w"})
        if isinstance(p, str):
            grade.add("rendering", f'template "{name}" renders', None, p)
            return
        grade.add("rendering", f'template "{name}" renders', p.returncode == 0,
                  f'define it: {{{{ define "{name}" }}}}...{{{{ end }}}}; amtool says: {p.stderr.strip()[-200:]}')
        if p.returncode:
            return
        outputs[name] = p.stdout
    for crit in ex.spec.get("rendering", []):
        out = outputs[crit["template"]]
        ok = all(re.search(rx, out, re.S) for rx in crit.get("match", [])) and \
            not any(re.search(rx, out, re.S) for rx in crit.get("absent", []))
        if "max_chars" in crit:
            ok = ok and len(out.strip()) <= crit["max_chars"]
        grade.add("rendering", crit["name"], ok, crit["hint"])


def grade_file(ex: Exercise, path: Path, live_target=None) -> Grade:
    """All stages for `path` (the learner's file, or any other); live only with a target."""
    t0 = time.monotonic()
    grade = Grade(ex.slug, str(path))
    text = path.read_text() if path.exists() else ""
    work = _workdir()
    try:
        kind = ex.spec["kind"]
        if kind == "rules":
            rule = static_rules(grade, ex, text, work, path.parent / "runbook.md")
            if rule is not None:
                behaviour(grade, ex, work)
                backtest.run(grade, ex, text)
                if live_target is not None and ex.spec.get("live"):
                    live.run(grade, ex, text, live_target)
        elif kind == "loki-rules":
            loki.grade(grade, ex, text, path.parent / "runbook.md")
        elif kind == "alertmanager":
            if static_alertmanager(grade, text, work):
                routing(grade, ex, work)
                inhibition.run(grade, ex, work)
        elif kind == "template":
            render(grade, ex, text, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    grade.seconds = round(time.monotonic() - t0, 1)
    return grade
