"""The docs name only what exists: every `make TARGET` is a Makefile target, every repo
path is in the tree, every setting (an UPPER_CASE variable) is read somewhere, every image
named is one the stack pins or builds, and an image is picked by service name, never by
grep. Checked in code (inline `code`, fenced and indented blocks) of every tracked
Markdown file. Pure Python."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from scripts import places, validate
from tests.tooling import REPO

TRACKED = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
DOCS = [REPO / f for f in TRACKED if f.endswith(".md")]
TARGETS = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))
# Files a reader is told to create (not shipped), and the user's places `make up` creates.
CREATED_BY_THE_READER = {"loki/rules/fake/shop.yml", *(p.path for p in places.PLACES)}
# Made by runs, never committed.
GENERATED = ("build/", "twins/images.env", "twins/.cache", "demo_app/wheelhouse", "workspace/")
# Read by upstream code (the OpenTelemetry SDK, Grafana, Go, Docker), not by ours.
UPSTREAM_PREFIXES = ("OTEL_", "GF_", "GO", "DOCKER_", "COMPOSE_")
DEMO_SETTINGS = REPO / "demo_app" / "src" / "demo_app" / "settings.py"


def _indented(prose: str) -> list[str]:
    """Indented code blocks (CommonMark): lines indented 4+ spaces (or a tab) after a blank
    line, except where they continue a list item."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    in_list, after_blank = False, True
    for line in prose.splitlines():
        if not line.strip():
            after_blank = True
            if current is not None:
                current.append("")
            continue
        indented = bool(re.match(r"^( {4,}|\t)", line))
        if indented and current is not None:
            current.append(line.strip())
        elif indented and after_blank and not in_list:
            current = [line.strip()]
            blocks.append(current)
        else:
            current = None
            if not indented:
                in_list = bool(re.match(r"^\s*([-*+]|\d+\.)\s", line))
        after_blank = False
    return ["\n".join(b).strip() for b in blocks]


def _code(text: str) -> list[str]:
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, re.DOTALL)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return fenced + _indented(prose) + re.findall(r"`([^`\n]+)`", prose)


def _settings_read_by_code() -> str:
    """Every tracked non-Markdown file's text, plus the demo's pydantic settings by their
    environment names (DEMO_ + field name; the demo's source is not imported here)."""
    texts = [(REPO / f).read_text(errors="ignore") for f in TRACKED  # not this file: its examples are stale
             if not f.endswith(".md") and (REPO / f).is_file() and (REPO / f).stat().st_size < 1_000_000
             and REPO / f != Path(__file__).resolve()]
    fields = re.findall(r"^    ([a-z]\w*): ", DEMO_SETTINGS.read_text(), re.MULTILINE)
    return "\n".join(texts + ["DEMO_" + f.upper() for f in fields])


def _findings(docs: list[Path]) -> dict[str, list[str]]:
    code_text = _settings_read_by_code()
    found: dict[str, list[str]] = {"make": [], "path": [], "variable": [], "image": [], "grep": []}
    pins = set(validate.image_defaults().values())
    twins = set(re.findall(r"^\w+_TAG=(twin/[\w.-]+):", (REPO / "twins" / "build.sh").read_text(), re.MULTILINE))
    for doc in docs:
        where = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc.name
        for code in _code(doc.read_text()):
            found["make"] += [f"{where}: make {t}" for t in re.findall(r"(?:^|[\s;(&|])make ([a-z][\w-]*)", code)
                              if t not in TARGETS]
            for token in re.findall(r"(?<![\w./:-])[\w][\w./*<>{}$-]*", code):
                path = token.rstrip(".")
                if "/" not in path or set(path) & set("*<>{}$"):
                    continue  # not a path, or a pattern (exercise-*.yml, <name>.md)
                # A path relative to the doc's own folder (a component README), as from the repo.
                repo_path = path
                if doc.is_relative_to(REPO) and not (REPO / path.split("/")[0]).exists():
                    repo_path = str((doc.parent / path).relative_to(REPO))
                if (repo_path.startswith(GENERATED) or repo_path.rstrip("/") in CREATED_BY_THE_READER
                        or any((repo_path.rstrip("/") + "/").startswith(p.path + "/") for p in places.PLACES if p.is_dir)
                        or not ((REPO / path.split("/")[0]).exists() or (doc.parent / path.split("/")[0]).exists())):
                    continue  # not a path into this repository (a URL part, an image, a container path)
                if not ((REPO / path).exists() or (doc.parent / path).exists()):
                    found["path"].append(f"{where}: {path}")
            for ref in re.findall(r"(?<![\w./-])((?:[a-z0-9.-]+/)+[a-z0-9._-]+:[\w.-]*[\w])", code):
                if ref.split(":")[0] not in twins and ref not in pins and ".example." not in f".{ref.split('/')[0]}.":
                    found["image"].append(f"{where}: {ref}")
            if re.search(r"config --images[^\n|]*\|\s*grep", code):
                found["grep"].append(f"{where}: an image picked by grep (scripts/compose_info.py image SERVICE picks one)")
            for var in re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])\b", code):
                if not var.startswith(UPSTREAM_PREFIXES) and not re.search(rf"\b{var}\b", code_text):
                    found["variable"].append(f"{where}: {var}")
    return found


FINDINGS = _findings(DOCS)


@pytest.mark.parametrize("kind", ["make", "path", "variable", "image", "grep"])
def test_the_docs_name_only_what_exists(kind):
    assert not FINDINGS[kind], f"docs name a {kind} the tree does not have: {sorted(set(FINDINGS[kind]))}"


def test_the_check_catches_drift(tmp_path):
    stale = tmp_path / "stale.md"
    stale.write_text("Run `make frobnicate`, edit `scripts/no_such_tool.py`, set `STACK_NO_SUCH_SETTING`;\n"
                     "`make up`, `scripts/validate.py` and `DEMO_MAX_CONNECTIONS` exist.\n")
    assert _findings([stale]) == {"make": ["stale.md: make frobnicate"], "path": ["stale.md: scripts/no_such_tool.py"],
                                  "variable": ["stale.md: STACK_NO_SUCH_SETTING"], "image": [], "grep": []}


def test_the_check_reads_indented_blocks_and_catches_images_and_grep(tmp_path):
    stale = tmp_path / "stale.md"
    stale.write_text("Validate the collector:\n\n"
                     "    docker run --rm \"$(docker compose config --images | grep otelcol)\" validate\n"
                     "    make frobnicate\n\n"
                     "Or run `prom/prometheus:v2.0.0` (old), `prom/prometheus:v3.16.0` (the pin).\n")
    found = _findings([stale])
    assert found["make"] == ["stale.md: make frobnicate"], found
    assert found["image"] == ["stale.md: prom/prometheus:v2.0.0"], found
    assert len(found["grep"]) == 1, found


# ---- figures: generated, never typed (scripts/measurements.py) --------------------------

def test_the_measurements_page_is_its_data_rendered_and_no_figure_drifted():
    p = subprocess.run(["python3", str(REPO / "scripts" / "measurements.py"), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_a_drifted_figure_is_caught(tmp_path):
    from scripts import measurements

    data = {"headline": {"make test minutes": 12}}
    doc = tmp_path / "x.md"
    doc.write_text("make test takes <!-- figure:make test minutes -->12<!-- /figure --> minutes; "
                   "test-all <!-- figure:make test-all minutes -->40<!-- /figure -->.\n")
    assert measurements.drifted(data, [doc]) == ["x.md: make test-all minutes says '40', the measurements None"]
    doc.write_text("make test takes <!-- figure:make test minutes -->15<!-- /figure --> minutes.\n")
    assert measurements.drifted(data, [doc]) == ["x.md: make test minutes says '15', the measurements 12"]


# ---- the README for a newcomer ------------------------------------------------------------

FIRST_PAGE = (REPO / "README.md").read_text().splitlines()[:200]


@pytest.mark.parametrize("section", ["## Start", "## Watch your own service", "## Add your own", "## Upgrade",
                                     "## Share it with your team", "## Stop"])
def test_the_readme_has_each_first_step_in_its_first_200_lines(section):
    assert section in FIRST_PAGE, f"README.md: {section!r} is not within the first 200 lines"


@pytest.mark.parametrize("question, answer", [
    ("where to point an OTLP exporter", "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318"),
    ("... from a container", "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318"),
    ("how to add a target", "prometheus/local/targets/"),
    ("how to add a rule", "prometheus/local/rules/"),
    ("how to switch the demo off", "COMPOSE_PROFILES="),
    ("how to upgrade", "make upgrade"),
    ("how to stop", "make down"),
    ("how a team logs in", "STACK_AUTH_PASSWORD"),
    ("how an app sends OTLP to a shared stack", "OTEL_EXPORTER_OTLP_HEADERS=\"authorization=Bearer"),
    ("which CA to trust", ".secrets/tls/ca.pem"),
])
def test_the_readmes_first_200_lines_answer(question, answer):
    assert any(answer in line for line in FIRST_PAGE), f"README.md's first 200 lines do not say {question} ({answer!r})"
