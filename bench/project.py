"""The benchmark's compose project (obs-bench): docker-compose.yml plus
bench/docker-compose.bench.yml, every port re-published on loopback where Docker picks the
host port, so it runs beside a stack started by `make up` and never touches it."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from scripts import compose_info, places

REPO = Path(__file__).resolve().parents[1]
PROJECT = "obs-bench"


class Project:
    """`extra_files`: compose files layered last (a test's settings); `name`: the compose
    project's name (obs-bench unless another tool reuses this one)."""

    def __init__(self, env: dict[str, str], keep: bool, extra_files: tuple | list = (), name: str = PROJECT):
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        places.create(REPO)  # mountpoints for the empty places the overlay puts over the user's
        overlay = self.tmp / "session.yml"
        overlay.write_text(compose_info.session_overlay(places=self.tmp / "places"))
        env_file = self.tmp / "bench.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        files = [REPO / "docker-compose.yml", overlay, REPO / "bench" / "docker-compose.bench.yml", *extra_files]
        self.cmd = ["docker", "compose", "-p", name, *(a for f in files for a in ("-f", str(f))),
                    "--env-file", str(env_file)]
        self.keep = keep
        self.ports: dict[str, dict[int, int]] = {}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*self.cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
        return p

    def up(self, services: list[str]) -> None:
        self.compose("down", "--volumes", "--remove-orphans", check=False)
        self.compose("up", "-d", "--wait", "--no-deps", *services)
        self.read_ports()

    def start(self, *services: str) -> None:
        """Starts stopped services again (Docker picks new host ports for them)."""
        self.compose("up", "-d", "--wait", "--no-deps", *services)
        self.read_ports()

    def read_ports(self) -> None:
        self.ports = {svc: {t: port for t, (_, port) in ports.items()}
                      for svc, ports in compose_info.published(self.cmd).items()}

    def down(self) -> None:
        if not self.keep:
            self.compose("down", "--volumes", "--remove-orphans", check=False)

    def generator_cpus(self) -> float:
        """The generator's CPU bound, as compose resolves it (docker-compose.bench.yml)."""
        config = json.loads(self.compose("--profile", "generator", "config", "--format", "json").stdout)
        return float(config["services"]["telemetrygen"]["cpus"])

    def url(self, service: str, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[service][port]}"
