"""The one catalogue of answers the grader is tested with (spoilers: kept out of exercises/).

answers/NN-slug.yml holds, for one exercise, a `reference` answer, `correct` variants (other
right answers: the stack's real label sets, another correct title...) and `wrong` answers,
each naming the criterion that must catch it (`caught_by`). A variant or a wrong answer
says only how it differs from the reference: the keys it sets replace the reference's
(`null` removes one), `text` replaces the whole file, `runbook: false` leaves the runbook
out. Every test, and the live stage's tests, render answers from here."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from exercises.grader.grade import Exercise, exercises

HERE = Path(__file__).resolve().parent / "answers"
RUNBOOK = "# {name}\n\n## Meaning\nx\n\n## Impact\nx\n\n## Diagnose\nx\n\n## Fix\nx\n"
RULE_KEYS = ("alert", "expr", "for", "keep_firing_for", "labels", "annotations")


@dataclass(frozen=True)
class Answer:
    ex: Exercise
    kind: str            # reference, correct or wrong
    name: str
    body: dict           # the reference with this answer's changes applied
    caught_by: str = ""

    @property
    def id(self) -> str:
        return f"{self.ex.slug}/{self.kind}/{self.name}"

    def text(self) -> str:
        if "text" in self.body:
            return self.body["text"]
        kind = self.ex.spec["kind"]
        if kind in ("rules", "loki-rules"):
            rule = {"alert": self.ex.spec["alertname"]}
            rule.update({k: self.body[k] for k in RULE_KEYS if self.body.get(k) is not None})
            rules = [rule, *self.body.get("extra_rules", [])]
            return yaml.safe_dump({"groups": [{"name": f"exercise-{self.ex.number:02d}", "rules": rules}]},
                                  sort_keys=False, width=120)
        if kind == "alertmanager":
            doc = yaml.safe_load(self.ex.starter.read_text())
            doc.update({k: self.body[k] for k in ("route", "inhibit_rules") if k in self.body})
            return yaml.safe_dump(doc, sort_keys=False)
        raise ValueError(f"{self.id}: a {kind} answer needs `text`")

    def write(self, folder: Path) -> Path:
        """The answer as the learner's file in `folder`, with a runbook beside it (unless
        the answer is about a missing runbook)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.ex.spec["file"]
        path.write_text(self.text())
        if self.body.get("runbook", True):
            (folder / "runbook.md").write_text(RUNBOOK.format(name=self.ex.spec.get("alertname")))
        return path


def _apply(reference: dict, change: dict) -> dict:
    body = {k: v for k, v in reference.items() if not ("text" in change and k != "runbook")}
    for k, v in change.items():
        if k in ("name", "caught_by"):
            continue
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body


@functools.cache
def catalogue() -> tuple[Answer, ...]:
    out = []
    for ex in exercises():
        if not (HERE / f"{ex.slug}.yml").exists():
            continue  # a test names the exercise without answers
        doc = yaml.safe_load((HERE / f"{ex.slug}.yml").read_text())
        ref = doc["reference"]
        out.append(Answer(ex, "reference", "reference", ref))
        out += [Answer(ex, "correct", c["name"], _apply(ref, c)) for c in doc.get("correct", [])]
        out += [Answer(ex, "wrong", w["name"], _apply(ref, w), w["caught_by"]) for w in doc.get("wrong", [])]
    return tuple(out)


def reference(slug: str) -> Answer:
    return next(a for a in catalogue() if a.ex.slug == slug and a.kind == "reference")
