"""Notification-template answers: `amtool template render` of each template over the
exercise's groups of alerts (several firing and resolved, interleaved, some without a
summary), all renderings of the batch in one container; then what a human would read."""
from __future__ import annotations

import json
import re

from . import tools


def counts_shown(text: str, want: dict[str, int]) -> bool:
    """Does the text show each count beside its word ("3 firing", "FIRING:3", "firing 3")?
    Words and numbers are read in order; each word takes the number right before it, or
    (the other convention) right after it, with no other word between."""
    seq = [(m.group(1) or int(m.group(2))) for m in re.finditer(r"(firing|resolved)|\b(\d+)\b", text.lower())]
    for step in (-1, 1):
        got: dict[str, int] = {}
        for i, tok in enumerate(seq):
            j = i + step
            if isinstance(tok, str) and 0 <= j < len(seq) and isinstance(seq[j], int):
                got.setdefault(tok, seq[j])
        if all(got.get(word) == n for word, n in want.items()):
            return True
    return False


def in_order(text: str, firing: list[str], resolved: list[str]) -> bool:
    """Every firing alert before every resolved one, a heading naming "firing" before the
    first and one naming "resolved" between the groups."""
    low = text.lower()
    pos_f = [text.find(m) for m in firing]
    pos_r = [text.find(m) for m in resolved]
    if min(pos_f + pos_r) < 0 or max(pos_f) > min(pos_r):
        return False
    return "firing" in low[:min(pos_f)] and "resolved" in low[max(pos_f):min(pos_r)]


def judge(crit: dict, out: str) -> bool:
    ok = all(re.search(rx, out, re.S) for rx in crit.get("match", [])) and \
        not any(re.search(rx, out, re.S) for rx in crit.get("absent", []))
    if "max_chars" in crit:
        ok = ok and len(out.strip()) <= crit["max_chars"] and "\n" not in out.strip()
    if "counts" in crit:
        ok = ok and counts_shown(out, crit["counts"])
    if "order" in crit:
        ok = ok and in_order(out, crit["order"]["firing"], crit["order"]["resolved"])
    return ok


def render(subs) -> None:
    if not subs:
        return
    why = tools.needs("ALERTMANAGER_IMAGE")
    if why:
        for s in subs:
            for name in s.ex.spec["templates"]:
                s.grade.skip("rendering", f'template "{name}" renders', why)
        return
    work = subs[0].dir.parent
    commands = {}
    for s in subs:
        tools.write(s.dir / "notification.tmpl", s.text)
        for data_name, data in s.ex.spec["data"].items():
            tools.write(s.dir / f"{data_name}.json", json.dumps(data))
            for name in s.ex.spec["templates"]:
                commands[f"{s.dir.name} {data_name} {name}"] = [
                    "amtool", "template", "render", f"--template.glob=/w/{s.dir.name}/notification.tmpl",
                    f"--template.data=/w/{s.dir.name}/{data_name}.json",
                    f'--template.text={{{{ template "{name}" . }}}}']
    out = tools.run_each("ALERTMANAGER_IMAGE", commands, {work: "/w"})
    for s in subs:
        broken = set()
        for name in s.ex.spec["templates"]:
            failures = [text for (rc, text) in (out[f"{s.dir.name} {d} {name}"] for d in s.ex.spec["data"]) if rc]
            s.grade.add("rendering", f'template "{name}" renders', not failures,
                        f'define it: {{{{ define "{name}" }}}}...{{{{ end }}}}; amtool says: '
                        f'{(failures or [""])[0].strip()[-200:]}')
            if failures:
                broken.add(name)
        for crit in s.ex.spec.get("rendering", []):
            if crit["template"] in broken:
                continue
            rc, text = out[f"{s.dir.name} {crit['data']} {crit['template']}"]
            s.grade.add("rendering", crit["name"], judge(crit, text), crit["hint"])
