"""`make chaos-stop` signals only the run `make chaos` started: its process group, and only
while the recorded pid still belongs to the process that started then (a pid read from a
file may be another process by now). No stack needed."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from drills import chaos

# A run's stand-in: a session leader with a child of its own in its process group.
RUN = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def group_members(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return out.split()


def test_chaos_stop_ends_the_runs_process_group(tmp_path) -> None:
    run = subprocess.Popen([sys.executable, "-c", RUN], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(group_members(run.pid)) < 2:
            assert time.monotonic() < deadline, "the stand-in's child did not start"
            time.sleep(0.1)
        pid_file = tmp_path / "chaos.pid"
        pid_file.write_text(json.dumps({"pid": run.pid, "started": chaos.started_at(run.pid)}))
        assert chaos.stop(pid_file, timeout=20) == 0
        assert run.wait(5) is not None
        deadline = time.monotonic() + 5
        while group_members(run.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_members(run.pid), "a process of the run's group outlived chaos-stop"
        assert not pid_file.exists()
    finally:
        run.kill()


def test_chaos_stop_leaves_a_process_that_reused_the_pid_alone(tmp_path, capsys) -> None:
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        pid_file = tmp_path / "chaos.pid"
        # The recorded run started at another time: this pid is someone else's now.
        pid_file.write_text(json.dumps({"pid": other.pid, "started": "1"}))
        assert chaos.stop(pid_file, timeout=5) == 0
        time.sleep(0.3)
        assert other.poll() is None, "chaos-stop signalled a process that only shares the recorded pid"
        assert "another process" in capsys.readouterr().out
        assert not pid_file.exists()
    finally:
        other.kill()
