#!/usr/bin/env bash
# Downloads every wheel the demo image needs into demo_app/wheelhouse/ so that
# `docker build` works with no network inside the build (see Dockerfile).
# Usage: demo_app/fetch-wheels.sh [PYTHON_VERSION]   (default 3.11: the bookworm twin base)
set -euo pipefail
PYV="${1:-3.11}"
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/wheelhouse"
py="${PYTHON:-python3}"
mkdir -p "$out"
# Binary wheels for manylinux x86_64 and the target interpreter, from the hashed lock
# (the build backend, setuptools, included).
"$py" -m pip download --quiet --dest "$out" --only-binary=:all: --require-hashes \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --python-version "$PYV" --implementation cp \
  -r "$here/requirements.lock"
# The project's own wheel (also checks that it builds).
"$py" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$out" "$here" 2>/dev/null \
  || "$py" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$here"
echo "wheelhouse for Python $PYV: $(ls "$out" | wc -l) files in $out"
