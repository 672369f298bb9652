"""docs/runbooks/*.md served as HTML pages, rendered by markdown-it-py (CommonMark, raw
HTML in the Markdown escaped, not passed through), so a runbook link in a notification or
in Grafana opens a readable page."""

from __future__ import annotations

import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")
STYLE = ("body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;"
         "line-height:1.5}code,pre{background:#f4f4f4}pre{padding:.6em;overflow:auto}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}")


class Runbooks:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.md") if NAME.match(p.stem))

    def page(self, name: str) -> str | None:
        """The runbook as a whole HTML page, or None when there is no such runbook."""
        name = name.removesuffix(".md")
        path = self.directory / f"{name}.md"
        if not NAME.match(name) or not path.is_file():
            return None
        body = self.md.render(path.read_text(encoding="utf-8", errors="replace"))
        # Links between runbooks are written to files (Other.md); here they are pages.
        body = re.sub(r'href="([A-Za-z][A-Za-z0-9_-]*)\.md"', r'href="\1"', body)
        return (f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>{html.escape(name)} runbook"
                f"</title><style>{STYLE}</style></head><body><p><a href='./'>all runbooks</a></p>"
                f"{body}</body></html>")

    def index(self) -> str:
        items = "".join(f"<li><a href='{n}'>{n}</a></li>" for n in self.names()) or "<li>none found</li>"
        return (f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>runbooks</title>"
                f"<style>{STYLE}</style></head><body><h1>Runbooks</h1><ul>{items}</ul></body></html>")
