"""The real tools (promtool, amtool, Alertmanager, Loki) from the stack's images, each run
once for a whole batch of answers; or what they need when they cannot run here."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from scripts.validate import Check, docker_cmd, image, missing_image


def needs(var: str) -> str | None:
    """What is missing to run the image `var` names, or None when it can run."""
    why = missing_image(var)
    return f"needs {var}: {why}" if why else None


def run(var: str, entrypoint: str, args: list[str], mounts: dict[Path, str],
        timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = docker_cmd(Check(entrypoint, var, entrypoint, args, mounts), image(var))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)  # the tools run as their images' users


def stage_files(subs, var: str, criterion: str, name: str) -> list[str]:
    """Writes each answer as `name` in its folder and returns the paths the image's tool
    sees (the batch's folder mounted at /w); when the image cannot run, marks `criterion`
    not graded for every answer and returns []."""
    why = needs(var)
    if why or not subs:
        for s in subs:
            s.grade.skip("static", criterion, why)
        return []
    for s in subs:
        write(s.dir / name, s.text)
    return [f"/w/{s.dir.name}/{name}" for s in subs]


MARK = "@@grader"


def run_each(var: str, commands: dict[str, list[str]], mounts: dict[Path, str],
             timeout: float = 300) -> dict[str, tuple[int, str]]:
    """Many commands in one container of the image (its shell): key -> (exit code, output).
    One container start instead of one per command is what keeps a batch fast."""
    script = "\n".join(f"printf '{MARK} begin {key}\\n'; {shlex.join(argv)} 2>&1; "
                       f"printf '\\n{MARK} end {key} %s\\n' $?" for key, argv in commands.items())
    p = run(var, "sh", ["-c", script], mounts, timeout)
    out: dict[str, tuple[int, str]] = {}
    key, lines = None, []
    for line in p.stdout.splitlines():
        if line.startswith(f"{MARK} begin "):
            key, lines = line.split(" ", 2)[2], []
        elif line.startswith(f"{MARK} end ") and key is not None:
            out[key] = (int(line.rsplit(" ", 1)[1]), "\n".join(lines[:-1] if lines and not lines[-1] else lines))
            key = None
        elif key is not None:
            lines.append(line)
    missing = set(commands) - set(out)
    if missing:
        raise RuntimeError(f"{image(var)}: no answer for {sorted(missing)[:3]}: {(p.stdout + p.stderr)[-500:]}")
    return out
