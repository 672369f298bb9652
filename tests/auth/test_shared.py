"""The stack shared with a team (STACK_AUTH on), on its real services: every published port
serves TLS with the stack's certificate and asks for the login (none or a wrong one is
refused, the right one works; plain HTTP and a client that does not trust the CA get
nothing); OTLP with the token is stored and without it refused, the refusals counted by
the edge collector; a silence needs the login; a drill pages and resolves through the
logins; a rotated certificate reaches every port with `make reload`. The e2e signal
tests run on this stack too (the other modules of this package)."""
from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from cryptography import x509
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from scripts import certs
from scripts.init_env import SECRETS
from tests.e2e import clients
from tests.e2e import stack as st
from tests.e2e.clients import HOST
from tests.e2e.polling import poll_until
from tests.tooling import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.signal("shared")]

# A read path of each published HTTP service, and who logs in there: the stack's login
# (STACK_AUTH_USER / STACK_AUTH_PASSWORD), or Grafana's own.
READ = {
    "prometheus": "/api/v1/status/buildinfo",
    "alertmanager": "/api/v2/status",
    "jaeger": "/api/services",
    "shop": "/api/products",
    "inventory": "/api/items",
    "alert-sink": "/api/notifications",
    "grafana": "/api/user",
}
OTLP_HTTP, OTLP_GRPC = 4318, 4317


def login(stack: st.Stack, service: str) -> tuple[str, str]:
    if service == "grafana":
        return stack.grafana_auth
    return stack.env["STACK_AUTH_USER"], stack.env["STACK_AUTH_PASSWORD"]


def bare() -> requests.Session:
    """A client with nothing of the suite's: no login added, no CA from the environment."""
    s = requests.Session()
    s.trust_env = False
    return s


def peer_certificate(port: int, ca: str | None) -> x509.Certificate:
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    with socket.create_connection((HOST, port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=HOST) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_every_published_port_serves_tls_and_asks_for_the_login(stack: st.Stack) -> None:
    ca = stack.login.ca_file
    missing = set(clients.ENDPOINTS) - set(READ) - {"otel-edge"}
    assert not missing, f"published services this test does not check: {sorted(missing)}"
    assert "otel-collector" not in clients.ENDPOINTS, "the plain collector is published beside the edge"
    checked, s = [], bare()
    for service, path in READ.items():
        if service in stack.plan.missing:
            continue  # its image is missing here: the summary names it
        assert service in clients.ENDPOINTS, f"{service} runs but publishes no port"
        url = clients.url(service, path)
        assert url.startswith("https://"), url
        user, password = login(stack, service)
        none = s.get(url, verify=ca, timeout=10)
        wrong = s.get(url, verify=ca, auth=(user, password + "x"), timeout=10)
        stranger = s.get(url, verify=ca, auth=("someone", password), timeout=10)
        right = s.get(url, verify=ca, auth=(user, password), timeout=10)
        assert (none.status_code, wrong.status_code, stranger.status_code) == (401, 401, 401), (
            service, none.status_code, wrong.status_code, stranger.status_code, none.text[:200])
        assert right.status_code == 200, (service, right.status_code, right.text[:300])
        # Plain HTTP to the TLS port gets no answer of the service's: Go's servers say "400
        # Client sent an HTTP request to an HTTPS server", uvicorn drops the connection.
        try:
            plain = s.get(url.replace("https://", "http://", 1), auth=(user, password), timeout=10)
            assert plain.status_code == 400, (service, plain.status_code, plain.text[:200])
        except requests.ConnectionError:
            pass
        # A client that does not trust the stack's CA refuses its certificate.
        with pytest.raises(requests.exceptions.SSLError):
            s.get(url, auth=(user, password), timeout=10)
        checked.append(service)
    for port in (OTLP_GRPC, OTLP_HTTP):
        cert = peer_certificate(clients.ENDPOINTS["otel-edge"][port], ca)
        assert cert.issuer == x509.load_pem_x509_certificate(open(ca, "rb").read()).subject
        with pytest.raises(ssl.SSLError):
            peer_certificate(clients.ENDPOINTS["otel-edge"][port], None)
    st.MEASUREMENTS["shared_ports_checked"] = sorted(checked + ["otel-edge"])
    assert set(checked) == set(READ) - set(stack.plan.missing), checked


def _edge_refusals(stack: st.Stack) -> dict[str, float]:
    """Requests the edge collector answered 401 (HTTP) and Unauthenticated (gRPC)."""
    http = clients.collector_metric(stack, "http_server_request_duration_count", service="otel-edge",
                                    http_request_method="POST", http_response_status_code="401")
    grpc = clients.collector_metric(stack, "rpc_server_call_duration_count", service="otel-edge",
                                    rpc_response_status_code="UNAUTHENTICATED")
    return {"http": http, "grpc": grpc}


def _send_spans(exporter, count: int, service: str) -> tuple[list[str], list[SpanExportResult]]:
    """`count` spans, one trace each, exported one by one (as an app's SDK would)."""
    results: list[SpanExportResult] = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span) -> None:
            results.append(exporter.export([span]))

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(Recording(exporter))
    tracer = provider.get_tracer("tests.auth")
    ids = []
    for i in range(count):
        with tracer.start_as_current_span(f"shared-{i}") as span:
            ids.append(format(span.get_span_context().trace_id, "032x"))
    return ids, results


@pytest.mark.services("otel-collector", "jaeger")
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_otlp_with_the_token_is_stored_and_without_it_refused_and_counted(stack: st.Stack, protocol: str) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    ca, token = stack.login.ca_file, stack.env["STACK_OTLP_TOKEN"]
    port = clients.ENDPOINTS["otel-edge"][OTLP_HTTP if protocol == "http" else OTLP_GRPC]

    def exporter(headers: dict[str, str]):
        if protocol == "http":
            return HttpExporter(endpoint=f"https://{HOST}:{port}/v1/traces", certificate_file=ca, headers=headers,
                                timeout=10)
        from grpc import ssl_channel_credentials
        return GrpcExporter(endpoint=f"{HOST}:{port}", credentials=ssl_channel_credentials(open(ca, "rb").read()),
                            headers=headers, timeout=10)

    sent, refused_n = 5, 3
    before = _edge_refusals(stack)
    service = f"shared-{protocol}-{secrets.token_hex(3)}"
    ids, ok = _send_spans(exporter({"authorization": f"Bearer {token}"}), sent, service)
    assert ok == [SpanExportResult.SUCCESS] * sent, ok
    wrong_ids, refused = [], []
    for headers in ({}, {"authorization": "Bearer not-the-token"}, {"authorization": f"Basic {token}"})[:refused_n]:
        i, r = _send_spans(exporter(headers), 1, service)
        wrong_ids += i
        refused += r
    assert refused == [SpanExportResult.FAILURE] * refused_n, refused

    def stored() -> list[str]:
        return [i for i in ids + wrong_ids
                if requests.get(clients.url("jaeger", f"/api/traces/{i}"), timeout=10).status_code == 200]

    found = poll_until(lambda: (got := stored()) and set(ids) <= set(got) and got, 120,
                       f"the {sent} spans sent with the token reach Jaeger")
    time.sleep(5)  # a refused span that got through would be there by now too
    found = stored()
    assert set(found) == set(ids), f"stored: {len(set(found) & set(ids))}/{sent} sent with the token, " \
                                   f"{len(set(found) & set(wrong_ids))}/{refused_n} sent without it"
    after = poll_until(lambda: (a := _edge_refusals(stack))[protocol] - before[protocol] >= refused_n and a, 60,
                       f"the edge collector counts {refused_n} refused {protocol} requests")
    st.MEASUREMENTS.setdefault("otlp_refused_counted", {})[protocol] = {
        "sent_with_token": sent, "stored": len(found), "sent_without": refused_n,
        "counted_refused": after[protocol] - before[protocol]}
    assert after[protocol] - before[protocol] == refused_n, (before, after)


def test_no_secret_in_docker_inspect_or_a_log_line(stack: st.Stack) -> None:
    """Every generated secret (init_env.SECRETS: the Grafana password, the fault switch's
    token, the login's password, the OTLP token), the login's bcrypt hash and its header
    value, and the server key reach the services as files only: no container's `docker
    inspect` (command, environment, healthcheck and its last outputs) and no log line
    holds one."""
    folder = Path(stack.env["SECRETS_DIR"]) / "auth"
    hashed = (folder / "htpasswd").read_text().strip().split(":", 1)[1]
    key = "".join((folder / "key.pem").read_text().splitlines()[1:-1])[:40]
    secrets_ = {name: stack.env[name] for name in SECRETS}
    secrets_.update({"bcrypt hash": hashed, "server key": key,
                     "Authorization header": (folder / "authorization").read_text().removeprefix("Basic ")})
    assert all(len(v) >= 16 for v in secrets_.values()), "a secret too short to look for"
    ids = [row["ID"] for row in stack.containers().values()]
    inspect = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
    logs = stack.compose("logs", "--no-color", check=False).stdout
    assert len(logs) > 1000, "no logs to look in"
    found = {name: where for name, value in secrets_.items()
             for where, text in (("docker inspect", inspect), ("logs", logs)) if value in text}
    assert not found, f"secrets shown: {found}"


@pytest.mark.services("alertmanager")
def test_a_silence_needs_the_login(stack: st.Stack) -> None:
    now = datetime.now(timezone.utc)
    silence = {"matchers": [{"name": "alertname", "value": "NothingReal", "isRegex": False, "isEqual": True}],
               "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat(),
               "createdBy": "tests/auth", "comment": "shared stack: needs the login"}
    url, ca, s = clients.url("alertmanager", "/api/v2/silences"), stack.login.ca_file, bare()
    user, password = login(stack, "alertmanager")
    assert s.post(url, json=silence, verify=ca, timeout=10).status_code == 401
    assert s.post(url, json=silence, verify=ca, auth=(user, "wrong"), timeout=10).status_code == 401
    made = s.post(url, json=silence, verify=ca, auth=(user, password), timeout=10)
    assert made.status_code == 200, made.text
    silence_id = made.json()["silenceID"]
    listed = s.get(url, verify=ca, auth=(user, password), timeout=10).json()
    creators = {x["createdBy"] for x in listed if x["status"]["state"] == "active"}
    assert creators == {"tests/auth"}, f"silences that got in: {listed}"
    assert s.delete(clients.url("alertmanager", f"/api/v2/silence/{silence_id}"), verify=ca,
                    timeout=10).status_code == 401
    assert s.delete(clients.url("alertmanager", f"/api/v2/silence/{silence_id}"), verify=ca, auth=(user, password),
                    timeout=10).status_code == 200


@pytest.mark.services("prometheus", "alertmanager", "alert-sink", "shop", "inventory", "loadgen")
def test_a_drill_pages_and_resolves_through_the_logins(stack: st.Stack) -> None:
    """`make drill` as a user runs it against the shared stack (drills/target.py: HTTPS, the
    stack's login, the admin token for the fault switch): the alert reaches the sink through
    Prometheus -> Alertmanager (TLS, login) -> the sink's webhook, and resolves."""
    from drills import drill
    from drills.catalogue import FAULTS
    from drills.target import Target

    target = Target(stack.compose_cmd, token=stack.env["DEMO_ADMIN_TOKEN"], login=stack.login)
    assert target.url("prometheus").startswith("https://")
    try:
        assert drill.run(target, FAULTS["latency"], timeout=240, resolve=True) == 0
    finally:
        target.reset()


@pytest.mark.signal("restarts")  # last: it restarts the services that read certificates at start
def test_a_rotated_certificate_reaches_every_port_with_make_reload(stack: st.Stack) -> None:
    secrets_dir = Path(stack.env["SECRETS_DIR"])
    ca = stack.login.ca_file
    tls = secrets_dir / "tls"
    old = {svc: {p: peer_certificate(hp, ca).serial_number for p, hp in ports.items()}
           for svc, ports in clients.ENDPOINTS.items()}
    assert len({s for ports in old.values() for s in ports.values()}) == 1, f"one certificate everywhere: {old}"
    certs.ensure(tls, certs.names_for(stack.env, []), force=True)  # `make certs FORCE=1`
    new_serial = x509.load_pem_x509_certificate((tls / "server.pem").read_bytes()).serial_number
    p = subprocess.run(["make", "--no-print-directory", "reload", f"COMPOSE={' '.join(stack.compose_cmd)}"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    # make reload ran scripts/auth.py: the folder the services read holds the new certificate.
    assert (secrets_dir / "auth" / "cert.pem").read_bytes() == (tls / "server.pem").read_bytes()

    def serving() -> dict:
        stack.refresh_endpoints()
        now = {svc: {p: peer_certificate(hp, ca).serial_number for p, hp in ports.items()}
               for svc, ports in clients.ENDPOINTS.items()}
        stale = {svc: ports for svc, ports in now.items() if set(ports.values()) != {new_serial}}
        assert not stale, f"still the old certificate: {stale}"
        return now

    # The collector and Jaeger re-read theirs every minute (reload_interval); Prometheus and
    # Alertmanager at each new connection; the rest were restarted by `make reload`.
    poll_until(serving, 150, "every published port serves the new certificate", interval=5)
    # The stack still works behind it: Prometheus still scrapes itself and Alertmanager
    # over TLS (they trust the CA, not a certificate).
    def scrapes() -> list:
        result = requests.get(clients.url("prometheus", "/api/v1/query"), timeout=10,
                              params={"query": 'up{job=~"prometheus|alertmanager"} == 1 and '
                                               'time() - timestamp(up) < 20'}).json()["data"]["result"]
        assert len(result) == 2, result
        return result

    poll_until(scrapes, 60, "Prometheus scrapes itself and Alertmanager over TLS after the rotation")
    r = requests.get(clients.url("prometheus", "/api/v1/query"), params={"query": "up"}, timeout=10)
    assert r.ok and r.json()["data"]["result"], r.text[:300]
