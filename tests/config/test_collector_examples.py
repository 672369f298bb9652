"""The collector's worked example for your own log files (otel-collector/examples/
app-log-file.extras.yml) does what it says, on the collector image: merged over the stack's
config.yml it reads every line of a log file once, and a line appended later once more
(counted by the receiver's own metric), although Loki is absent here."""
from __future__ import annotations

import re
import subprocess
import time
import urllib.request

from tests.tooling import REPO, require_image

EXAMPLE = "examples/app-log-file.extras.yml"


def accepted(port: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        r'^otelcol_receiver_accepted_log_records(?:_total)?\{[^}]*receiver="file_log/myapp"[^}]*\} (\S+)$', text,
        re.MULTILINE))


def wait_for(port: str, want: int, timeout: float = 60) -> float:
    deadline, got = time.monotonic() + timeout, -1.0
    while time.monotonic() < deadline:
        try:
            got = accepted(port)
        except OSError:
            pass
        if got >= want:
            return got
        time.sleep(1)
    return got


def test_the_log_file_example_reads_every_line_once(tmp_path):
    image = require_image("OTELCOL_IMAGE")
    logs = tmp_path / "myapp"
    logs.mkdir(mode=0o755)
    log = logs / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    log.chmod(0o644)
    logs.chmod(0o755)
    cid = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8888", "--tmpfs", "/var/lib/otelcol",
         "-e", "LOKI_OTLP_ENDPOINT=http://127.0.0.1:9/nowhere",  # no Loki: the lines queue
         "-v", f"{REPO / 'otel-collector'}:/etc/otelcol:ro", "-v", f"{logs}:/var/log/myapp:ro",
         image, "--config=/etc/otelcol/config.yml", f"--config=/etc/otelcol/{EXAMPLE}"],
        capture_output=True, text=True, check=True).stdout.strip()
    try:
        port = subprocess.run(["docker", "port", cid, "8888/tcp"], capture_output=True, text=True,
                              check=True).stdout.split(":")[-1].strip()
        assert wait_for(port, 50) == 50, subprocess.run(["docker", "logs", cid], capture_output=True, text=True).stderr[-2000:]
        with log.open("a") as f:
            f.write("".join(f"later {i}\n" for i in range(7)))
        assert wait_for(port, 57) == 57
        time.sleep(3)  # a line read twice would be counted by now
        assert accepted(port) == 57
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
