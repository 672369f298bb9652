"""The contract every page of this stack keeps (docs/conventions.md): a severity,
summary and description, a runbook_url ending in the alert's name, and a runbook."""
from __future__ import annotations

from pathlib import Path

RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnose", "## Fix")
SEVERITIES = ("critical", "warning", "info")


def contract(grade, ex, rule: dict | None, runbook: Path) -> None:
    name = ex.spec["alertname"]
    grade.add("static", f"an alert named {name}", rule is not None,
              f"the grader looks for `alert: {name}` (the name the README asks for)")
    if rule is None:
        return
    labels, notes = rule.get("labels") or {}, rule.get("annotations") or {}
    want = ex.spec.get("severity")
    grade.add("static", "a severity label" + (f" ({want})" if want else ""),
              labels.get("severity") == want if want else labels.get("severity") in SEVERITIES,
              f"labels.severity is one of {', '.join(SEVERITIES)}; the README says which this page deserves")
    grade.add("static", "summary and description annotations", bool(notes.get("summary")) and bool(
        notes.get("description")), "a pager shows the summary; the description says what is wrong and how much "
                                   "(templated with {{ $labels.x }} and {{ $value }})")
    grade.add("static", "a runbook_url ending in the alert's name", str(notes.get("runbook_url", "")).rstrip(
        "/").endswith(f"/runbooks/{name}"), "docs/conventions.md: runbook_url points at .../runbooks/<AlertName>")
    book = runbook  # beside the graded file
    text = book.read_text() if book.exists() else ""
    grade.add("static", "a runbook (runbook.md with its four sections)", all(s in text for s in RUNBOOK_SECTIONS),
              f"write {book.name} beside your rules with the sections {', '.join(RUNBOOK_SECTIONS)} "
              "(docs/runbooks/ has examples)")
