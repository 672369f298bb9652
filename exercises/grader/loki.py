"""The log-based exercise: a Loki ruler rule group. Its contract is checked here; its
LogQL and its behaviour need the stack's Loki image (Grafana's, AGPL, not built here)."""
from __future__ import annotations

import yaml

from scripts.validate import image, missing_image

from .contract import contract


def grade(grade, ex, text: str, runbook) -> None:
    try:
        doc = yaml.safe_load(text) or {}
        rules = [r for g in doc.get("groups", []) or [] for r in g.get("rules", []) or [] if "alert" in r]
        ok = True
    except yaml.YAMLError as e:
        rules, ok = [], False
        grade.add("static", "YAML a Loki ruler reads (groups: [{name, rules}])", False, str(e).splitlines()[0])
    if ok:
        grade.add("static", "YAML a Loki ruler reads (groups: [{name, rules}])", bool(doc.get("groups")),
                  "the file holds `groups:`, each with a name and rules, as a Prometheus rule file")
    rule = next((r for r in rules if r["alert"] == ex.spec["alertname"]), None)
    contract(grade, ex, rule, runbook)
    # Only Loki parses LogQL: without its image, say so rather than guess.
    why = missing_image("LOKI_IMAGE") or f"the grader has no Loki stage yet: load it by hand into {image('LOKI_IMAGE')}'s " \
        "ruler (exercises/12-log-alert/README.md)"
    grade.add("static", "LogQL that Loki's ruler accepts", None, why)
