"""The demo's listener for other machines (DEMO_PUBLISHED_PORT, the stack shared with
STACK_AUTH): TLS, and every request authenticated with the stack's user and password or
the admin token; the plain listener beside it serves the stack's own containers as before.
Run as the image runs it (`python -m demo_app ROLE`), with a CA and certificate made by
scripts/certs.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from scripts import certs
from tests.unit.conftest import closed_port

SRC = Path(__file__).resolve().parents[2] / "demo_app" / "src"
PASSWORD, TOKEN = "correct horse battery staple", "admin-token-123"


@pytest.fixture
def sink(tmp_path):
    certs.ensure(tmp_path / "tls", ["localhost", "127.0.0.1"])
    (tmp_path / "password").write_text(PASSWORD + "\n")
    (tmp_path / "token").write_text(TOKEN)
    plain, published = closed_port(), closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "OTEL_"))}
    env.update(PYTHONPATH=str(SRC), OTEL_SDK_DISABLED="true", DEMO_PORT=str(plain), DEMO_SMTP_PORT="0",
               DEMO_STORE_PATH=str(tmp_path / "sink.db"), DEMO_PUBLISHED_PORT=str(published),
               DEMO_TLS_CERT_FILE=str(tmp_path / "tls" / "server.pem"),
               DEMO_TLS_KEY_FILE=str(tmp_path / "tls" / "server-key.pem"),
               DEMO_AUTH_PASSWORD_FILE=str(tmp_path / "password"), DEMO_RUNBOOKS_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "demo_app", "alert-sink"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{plain}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "no start"
        time.sleep(0.2)
    yield proc, base, f"https://localhost:{published}", str(tmp_path / "tls" / "ca.pem")
    if proc.poll() is None:
        proc.kill()


def test_the_published_listener_asks_for_the_stacks_credentials_over_tls(sink):
    proc, plain, published, ca = sink
    url = published + "/api/notifications"
    assert requests.get(url, verify=ca, timeout=5).status_code == 401
    refused = requests.get(url, verify=ca, timeout=5)
    assert refused.headers["WWW-Authenticate"].startswith("Basic"), refused.headers
    assert requests.get(url, verify=ca, auth=("admin", "wrong"), timeout=5).status_code == 401
    assert requests.get(url, verify=ca, auth=("someone", PASSWORD), timeout=5).status_code == 401
    assert requests.get(url, verify=ca, auth=("admin", PASSWORD), timeout=5).status_code == 200
    # The plain listener is the stack's own: no credentials asked.
    assert requests.get(plain + "/api/notifications", timeout=5).status_code == 200
    # Plain HTTP to the TLS port gets no answer of the app's.
    with pytest.raises(requests.ConnectionError):
        requests.get(published.replace("https://", "http://") + "/api/notifications", timeout=5)
    # A client that does not trust the stack's CA refuses the certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, auth=("admin", PASSWORD), timeout=5)


def test_a_stop_ends_both_listeners(sink):
    """SIGTERM (docker stop) shuts both servers down, at once: the process ends as a plain
    uvicorn does (it re-raises the signal once the servers have finished: -15)."""
    proc, *_ = sink
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    log = proc.stdout.read()
    assert log.count("Finished server process") == 2, log[-3000:]
