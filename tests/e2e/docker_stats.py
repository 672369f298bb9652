"""Each container's peak memory during an e2e session, from `docker stats` sampled in
the background (compose_session reports it with the session's measurements)."""
from __future__ import annotations

import re
import subprocess
import threading

_UNITS = {"b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_size(text: str) -> float:
    """'12.5MiB' -> bytes."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]+)\s*", text)
    if not m:
        raise ValueError(f"unparsable size {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


class MemorySampler(threading.Thread):
    """Samples `docker stats --no-stream` for the project's containers in the background
    and keeps each compose service's peak memory (and its limit)."""

    def __init__(self, project: str, interval: float = 5.0):
        super().__init__(name="e2e-docker-stats", daemon=True)
        self.project = project
        self.interval = interval
        self.peak: dict[str, float] = {}
        self.limit: dict[str, float] = {}
        self.samples = 0
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def sample(self) -> None:
        ps = subprocess.run(
            ["docker", "ps", "--filter", f"label=com.docker.compose.project={self.project}",
             "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}'],
            capture_output=True, text=True, timeout=30)
        ids = dict(line.split(" ", 1) for line in ps.stdout.split("\n") if " " in line)
        if not ids:
            return
        stats = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.MemUsage}}", *ids],
            capture_output=True, text=True, timeout=60)
        for line in stats.stdout.splitlines():
            cid, _, usage = line.partition("\t")
            svc = next((s for i, s in ids.items() if i.startswith(cid) or cid.startswith(i)), None)
            if svc is not None:
                self.record(svc, usage)
        self.samples += 1

    def record(self, svc: str, usage: str) -> None:
        """One `docker stats` MemUsage, '70.5MiB / 192MiB', into the service's peak."""
        used, _, limit = usage.partition("/")
        try:
            used_b, limit_b = parse_size(used), parse_size(limit)
        except (ValueError, KeyError) as exc:
            self.errors.append(f"{svc}: {exc}")
            return
        if limit_b == 0:  # "0B / 0B": it exited between `ps` and `stats` (a one-shot)
            return
        self.peak[svc] = max(self.peak.get(svc, 0.0), used_b)
        self.limit[svc] = limit_b

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.sample()
            except (subprocess.SubprocessError, OSError) as exc:
                self.errors.append(str(exc))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=90)

    def report(self) -> dict[str, dict[str, float]]:
        return {svc: {"peak_mib": round(self.peak[svc] / 2**20, 1),
                      "limit_mib": round(self.limit.get(svc, 0) / 2**20, 1)}
                for svc in sorted(self.peak)}
