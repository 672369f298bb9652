#!/usr/bin/env python3
"""Create or refresh the project's virtual environment (.venv) from the hashed lock, so
that `make test` needs nothing but Python 3.11+ on the machine.

    python3 scripts/venv.py          (make venv; every target that needs packages runs it)
    python3 scripts/venv.py --lock   (make lock: re-resolve requirements-dev.txt)

- requirements-dev.txt (and the files it includes with -r) pin what the code imports;
  requirements.lock is that resolved, every package with its hashes (`uv pip compile
  --generate-hashes`), and is what gets installed, with --require-hashes. A pin changed
  without `make lock` is refused, naming the package.
- Reused as is while the lock is unchanged: .venv/requirements.sha256 holds a hash of
  requirements.lock and the interpreter's version.
- `uv` (PyPI's fast installer) is used when it is on PATH; otherwise the standard
  `venv` module and pip. Where `venv` comes without pip (Debian and Ubuntu ship ensurepip
  in a separate python3-venv package), pip is bootstrapped from its own wheel, downloaded
  from PyPI and checked against the hash pinned below: nothing is installed outside .venv
  and no system package is needed.

Standard library only: this runs before anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
REQUIREMENTS = REPO / "requirements-dev.txt"
LOCK = REPO / "requirements.lock"
# The demo image installs its own lock (demo_app/Dockerfile); `make lock` writes both.
DEMO_REQUIREMENTS = REPO / "demo_app" / "requirements.txt"
DEMO_LOCK = REPO / "demo_app" / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
STAMP = VENV / "requirements.sha256"
# pip's own wheel for the bootstrap where ensurepip is missing (pypi.org JSON API gives
# the URL and sha256 of every file).
PIP_WHEEL = ("https://files.pythonhosted.org/packages/07/25/"
             "ee8c38ae72d66b844ce8eb9711ba905dba21ca1a8a0c960057c41cd23337/pip-26.3-py3-none-any.whl")
PIP_WHEEL_SHA256 = "f3b60b20ffaadd4415ed7957212a38ac63fa4c5fa375bd0f4a797777940fad13"
if sys.version_info < (3, 11):
    sys.exit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]})")


def requirement_files(path: Path | None = None) -> list[Path]:
    """The file and every file it includes with -r, recursively."""
    path = path or REQUIREMENTS
    files = [path]
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*(?:-r|--requirement)\s+(\S+)", line)
        if m:
            files += requirement_files((path.parent / m.group(1)).resolve())
    return files


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    return {_name(n): v for n, v in PIN.findall(text)}


def locks() -> list[tuple[Path, Path]]:
    """(requirements file, the lock resolved from it)."""
    return [(REQUIREMENTS, LOCK), (DEMO_REQUIREMENTS, DEMO_LOCK)]


def stale_pins() -> list[str]:
    """Pins (with those of -r files) that their lock disagrees with, as `name==pin (lock path: x)`."""
    stale = []
    for requirements, lock_file in locks():
        locked = pins(lock_file.read_text())
        wanted: dict[str, str] = {}
        for f in requirement_files(requirements):
            wanted.update(pins(f.read_text()))
        stale += [f"{n}=={v} ({lock_file.relative_to(REPO)}: {locked.get(n, 'absent')})"
                  for n, v in sorted(wanted.items()) if locked.get(n) != v]
    return stale


def fingerprint() -> str:
    return hashlib.sha256(sys.version.encode() + b"\0" + LOCK.read_bytes()).hexdigest()


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd: str | Path) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def download_pip(dest: Path) -> Path:
    wheel = dest / PIP_WHEEL.rsplit("/", 1)[1]
    with urllib.request.urlopen(PIP_WHEEL, timeout=60) as r:
        data = r.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != PIP_WHEEL_SHA256:
        sys.exit(f"{PIP_WHEEL}: sha256 {digest}, expected {PIP_WHEEL_SHA256}; not installing it")
    wheel.write_bytes(data)
    return wheel


def create(venv: Path) -> None:
    """A new venv with the requirements installed."""
    uv = shutil.which("uv")
    if uv:
        run(uv, "venv", "--quiet", "--python", sys.executable, venv)
        run(uv, "pip", "install", "--quiet", "--python", python_of(venv), "--require-hashes", "-r", LOCK)
        return
    try:
        run(sys.executable, "-m", "venv", venv)
    except subprocess.CalledProcessError:
        # Debian/Ubuntu without python3-venv: no ensurepip. A venv without pip still works;
        # pip then installs itself from its wheel (a wheel is importable as a zip).
        print("venv with pip failed (no ensurepip here); bootstrapping pip from PyPI", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        run(sys.executable, "-m", "venv", "--without-pip", venv)
        with tempfile.TemporaryDirectory() as d:
            wheel = download_pip(Path(d))
            run(python_of(venv), f"{wheel}/pip", "install", "--quiet", "--no-index", wheel)
    py = python_of(venv)
    run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes", "-r", LOCK)


def ensure() -> None:
    """.venv as requirements.lock says, reused while the lock and the interpreter are unchanged."""
    want = fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == want and python_of(VENV).exists():
        return
    print(f"Setting up {VENV} from {LOCK.name} (first run, or the lock changed)", flush=True)
    # From scratch, in place (a venv cannot be moved); the stamp is written last, so an
    # interrupted install is never taken for a current one.
    shutil.rmtree(VENV, ignore_errors=True)
    create(VENV)
    STAMP.write_text(want + "\n")
    print(f"{VENV} ready", flush=True)


def lock() -> None:
    """Resolve requirements-dev.txt into requirements.lock with the uv that the current lock
    installs: every platform's wheels hashed, markers kept (--universal)."""
    ensure()
    os.chdir(REPO)  # relative paths in the locks' "# via -r ..." comments
    for requirements, lock_file in locks():
        run(VENV / "bin" / "uv", "pip", "compile", "--quiet", "--universal", "--python-version", "3.11",
            "--generate-hashes", "--custom-compile-command", "make lock",
            "-o", lock_file.relative_to(REPO), requirements.relative_to(REPO))


def main() -> int:
    if sys.argv[1:] == ["--lock"]:
        lock()
        return 0
    stale = stale_pins()
    if stale:
        sys.exit(f"a lock is behind its pins: {', '.join(stale)}; run `make lock`")
    ensure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
