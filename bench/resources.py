"""CPU and memory of the benchmark's containers during a step, from the Engine API."""
from __future__ import annotations

import threading

from .project import PROJECT


class Stats(threading.Thread):
    """Resources of the project's containers (the generator included) during a step, from
    the Engine API's cumulative counters: CPU as the CPU time each service used from the
    step's start until it was drained, per second of load (cores); memory as the peak of
    its usage without page cache (what `docker stats` shows). A container that starts
    during the step (each generator run) counts all of its CPU time; polled every
    POLL_S, so at most that much of a generator run's end is missed."""

    POLL_S = 0.5

    def __init__(self, project: str = PROJECT):
        super().__init__(daemon=True)
        import docker

        self.project = project
        self.client = docker.from_env()
        self.service: dict[str, str] = {}  # container id -> compose service
        self.cpu_ns: dict[str, tuple[int, int]] = {}  # container id -> (CPU ns at first sight, latest)
        self.rss: dict[str, float] = {}  # service -> peak MiB
        self.polls = 0
        self._stop_event = threading.Event()

    def poll(self) -> None:
        for c in self.client.containers.list(filters={"label": f"com.docker.compose.project={self.project}"}):
            try:
                s = self.client.api.stats(c.id, stream=False, one_shot=True)
                cpu_ns = s["cpu_stats"]["cpu_usage"]["total_usage"]
            except Exception:  # it exited between list and stats: keep what we had
                continue
            self.service[c.id] = c.labels.get("com.docker.compose.service", c.name)
            first = self.cpu_ns.get(c.id, (cpu_ns if self.polls == 0 else 0, 0))[0]
            self.cpu_ns[c.id] = (first, cpu_ns)
            svc = self.service[c.id]
            self.rss[svc] = max(self.rss.get(svc, 0.0), working_set(s.get("memory_stats", {})) / 2**20)
        self.polls += 1

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.poll()
            self._stop_event.wait(self.POLL_S)

    def stop(self, load_s: float) -> dict[str, dict[str, float]]:
        self._stop_event.set()
        self.join(30)
        cpu_s: dict[str, float] = {}
        for cid, (first, last) in self.cpu_ns.items():
            cpu_s[self.service[cid]] = cpu_s.get(self.service[cid], 0.0) + (last - first) / 1e9
        return {svc: {"cpu_cores": round(seconds / load_s, 3), "rss_mib": round(self.rss.get(svc, 0.0), 1)}
                for svc, seconds in cpu_s.items()}


def working_set(mem: dict) -> float:
    """Memory usage without inactive page cache, as `docker stats` computes it (cgroup v1
    and v2 name the field differently)."""
    usage = mem.get("usage", 0)
    stats = mem.get("stats", {})
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return usage - cache if cache < usage else usage


def resident(mem: dict) -> tuple[float, float]:
    """(anonymous, mapped file) bytes of the container's processes: their RSS, split into
    what they allocated themselves (heap, stacks: where a leak shows) and file pages they
    map (an mmapped database's files: the kernel can drop them). cgroup v1: total_rss and
    total_mapped_file; v2: anon and file_mapped."""
    stats = mem.get("stats", {})
    return (float(stats.get("total_rss", stats.get("anon", 0))),
            float(stats.get("total_mapped_file", stats.get("file_mapped", 0))))
