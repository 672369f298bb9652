"""Talking to the e2e stack's services: over the ports it publishes on 127.0.0.1 (url,
get_json and the Prometheus, Jaeger helpers), or from inside its network for what it
does not publish (inside_json, collector_metric)."""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests

from scripts import compose_info

if TYPE_CHECKING:
    from tests.e2e.stack import Stack

# Every port of the e2e stack is published on loopback, on a free port Docker picks (an
# override of the compose files' `ports`, see compose_session()), so the suite runs beside
# a stack the user started with `make up`. The ports are read back from compose after
# `up` (ENDPOINTS), never typed here: docker-compose.yml is the one place they live.
HOST = "127.0.0.1"
ENDPOINTS: dict[str, dict[int, int]] = {}  # service -> {container port: host port}
# Plain HTTP, or HTTPS and the stack's login while it is shared (STACK_AUTH: the auth tier).
LOGIN = compose_info.Login()


class _StackLogin(requests.auth.AuthBase):
    """The stack's login on a request to it that carries no credentials of its own (the
    admin token, Grafana's login keep theirs)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Authorization" not in r.headers and LOGIN.basic:
            r.headers["Authorization"] = LOGIN.basic
        return r


def use_login(login: compose_info.Login) -> None:
    """Every request of this process to the stack (the tests call `requests` directly) goes
    as `login` says: with STACK_AUTH on, over TLS trusting the stack's CA (requests reads
    REQUESTS_CA_BUNDLE) and with its login, given where requests would look for a netrc
    entry (only when the request names no credentials itself)."""
    global LOGIN
    LOGIN = login
    if login.ca_file:
        os.environ["REQUESTS_CA_BUNDLE"] = login.ca_file
        requests.sessions.get_netrc_auth = (
            lambda u, raise_errors=False: _StackLogin() if urlsplit(u).hostname == HOST else None)


def url(service: str, path: str = "", port: int | None = None) -> str:
    """URL of a service's published port (`port`: the container port, needed only when
    the service publishes several)."""
    ports = ENDPOINTS.get(service)
    if not ports:
        raise AssertionError(f"{service} publishes no port in the e2e stack (published: {ENDPOINTS})")
    if port is None:
        if len(ports) != 1:
            raise AssertionError(f"{service} publishes {sorted(ports)}: say which")
        port = next(iter(ports))
    return f"{LOGIN.scheme}://{HOST}:{ports[port]}{path}"


def get_json(service: str, path: str, *, params: dict | None = None, timeout: float = 10,
             **kwargs) -> Any:
    r = requests.get(url(service, path), params=params, timeout=timeout, **kwargs)
    r.raise_for_status()
    return r.json()


def prom_query(expr: str, **params: Any) -> list[dict]:
    """Instant query; the result vector (raises on a query error)."""
    body = get_json("prometheus", "/api/v1/query", params={"query": expr, **params})
    assert body["status"] == "success", body
    return body["data"]["result"]


HEX32 = re.compile(r"[0-9a-f]{32}")


def exemplar_trace_ids(series: str, window_s: float = 900) -> list[str]:
    """trace_ids of the exemplars Prometheus holds for `series`, oldest first."""
    end = time.time()
    body = get_json("prometheus", "/api/v1/query_exemplars",
                    params={"query": series, "start": end - window_s, "end": end})
    assert body["status"] == "success", body
    found = sorted((float(e["timestamp"]), e["labels"].get("trace_id", ""))
                   for s in body["data"] for e in s["exemplars"])
    return [i for _, i in found if HEX32.fullmatch(i) and set(i) != {"0"}]


def new_trace_context() -> tuple[str, dict[str, str]]:
    """A fresh W3C trace id and the `traceparent` header that makes the service continue
    it (sampled), so the test knows the id of the trace its request produces."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def jaeger_trace(trace_id: str) -> dict | None:
    """The trace from Jaeger's query API, or None while it is not there (404)."""
    r = requests.get(url("jaeger", f"/api/traces/{trace_id}"), timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    data = r.json().get("data") or []
    return data[0] if data else None


def inside_json(stack: "Stack", service: str, port: int, path: str, params: dict | None = None) -> Any:
    """GET a JSON API on a port the stack does not publish (Loki's: nothing a web page can
    reach), from inside the project's network."""
    query = ("?" + urlencode(params)) if params else ""
    return json.loads(compose_info.fetch_inside(stack.compose_cmd, f"http://{service}:{port}{path}{query}"))


def collector_metric(stack: "Stack", name: str, service: str = "otel-collector", port: int = 8888,
                     **labels: str) -> float:
    """Sum of a component's self-metric `name` over the series carrying `labels`, read from
    its metrics endpoint (the collector's :8888) inside the network (the collector image
    has no shell)."""
    text = compose_info.fetch_inside(stack.compose_cmd, f"http://{service}:{port}/metrics", timeout=30)
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total
