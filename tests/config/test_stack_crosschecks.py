"""Cross-checks no single validator does: the compose file against the conventions
(docs/conventions.md) and the defaults that protect the user, and every address in the
component configs against the services and ports that really exist."""
from __future__ import annotations

import re

import pytest
import yaml

from scripts import validate
from tests.tooling import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
ALL_SERVICES: dict = COMPOSE["services"]
# One-shot helpers (restart: "no") prepare something and exit; the rest run for good.
ONE_SHOT = {n for n, s in ALL_SERVICES.items() if s.get("restart") == "no"}
SERVICES: dict = {n: s for n, s in ALL_SERVICES.items() if n not in ONE_SHOT}
CONVENTIONS = (REPO / "docs" / "conventions.md").read_text()
DEMO_ROLES = {"shop", "inventory", "loadgen", "alert-sink"}
# Images with no shell or HTTP client (DESIGN.md "Facts that bite"): their healthcheck runs
# promtool from the collector-probe volume, which volume-init fills from the Prometheus image.
PROBED = {"otel-collector"}
BIND = "${BIND_ADDRESS:-127.0.0.1}"
# What each optional part (a compose profile) may read of the machine, and why it needs it
# (README, "Watch what you run"). Nothing else mounts a host path or the Docker socket.
HOST_ACCESS = {
    # Docker's API (the socket is root's, mode 660: uid 0 with no capability opens it).
    "telegraf": {"profile": "containers", "user": "0:0", "mounts": {"/var/run/docker.sock"}},
    # The host's filesystem tree, read-only, as nobody.
    "node-exporter": {"profile": "host", "user": "65534:65534", "mounts": {"/"}},
}


def _conventions_ports() -> dict[str, tuple[set[int], set[int]]]:
    """service -> (ports it listens on, ports published) from the conventions table."""
    table = CONVENTIONS.split("## Services and ports", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"[a-z][a-z-]*", cells[0]):
            continue
        name, ports, published, _ = cells
        listen = {int(p) for p in re.findall(r"\b\d{4,5}\b", ports)}
        if published == "yes":
            pub = listen
        elif published == "no":
            pub = set()
        else:
            pub = {int(p) for p in re.findall(r"\b\d{4,5}\b", published)}
        out[name] = (listen, pub)
    return out


PORTS = _conventions_ports()


def _mem_bytes(v: str) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", str(v).lower())
    assert m, f"unreadable memory limit {v!r}"
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]


def _mem_limit(svc: dict) -> str | None:
    return svc.get("mem_limit") or (
        svc.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory"))


def _default(value: str) -> str:
    """`${VAR:-default}` -> default; anything else unchanged."""
    m = re.fullmatch(r"\$\{(?:env:)?\w+:-([^}]*)\}(.*)", value)
    return m.group(1) + m.group(2) if m else value


# ---- compose: conventions and protective defaults -----------------------------------

def test_services_match_conventions():
    assert set(SERVICES) == set(PORTS), (
        "compose services differ from docs/conventions.md: "
        f"only in compose {set(SERVICES) - set(PORTS)}, only in conventions {set(PORTS) - set(SERVICES)}")


@pytest.mark.parametrize("name", sorted(ALL_SERVICES))
def test_image_is_pinned_and_overridable(name):
    image = ALL_SERVICES[name]["image"]
    m = validate.IMAGE_PIN.fullmatch(image)
    assert m, f"{name}: image {image!r} is not ${{X_IMAGE:-pinned}}"
    var, default = m.groups()
    assert ":" in default and not default.endswith((":latest", ":main")), (
        f"{name}: default {default!r} is not pinned")
    if name in DEMO_ROLES:
        assert var == "DEMO_IMAGE"
        svc = ALL_SERVICES[name]
        assert svc.get("build") == "./demo_app", f"{name}: no build: ./demo_app"
        # Built here, never looked up on a registry unless the user says so.
        assert _default(svc.get("pull_policy", "")) == "build", f"{name}: pull_policy {svc.get('pull_policy')}"


def test_each_image_is_pinned_once():
    """An image pin (X_IMAGE's default) is written once in the compose file; a second
    service using the same image refers to it through a YAML anchor."""
    raw = (REPO / "docker-compose.yml").read_text()
    for var, default in validate.IMAGE_PIN.findall(raw):
        assert raw.count(default) == 1, f"{default} ({var}) is written {raw.count(default)} times"


def test_one_shot_helpers_are_minimal():
    for name in ONE_SHOT:
        svc = ALL_SERVICES[name]
        assert svc.get("network_mode") == "none", f"{name}: a one-shot helper needs no network"
        assert not svc.get("ports"), f"{name} publishes ports"
        assert set(svc.get("cap_add", [])) <= {"CHOWN"}, f"{name}: capabilities {svc.get('cap_add')}"
        users = [s for s in ALL_SERVICES.values()
                 if s.get("depends_on", {}).get(name, {}).get("condition") == "service_completed_successfully"]
        assert users, f"{name}: no service waits for it (service_completed_successfully)"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_bind_to_bind_address(name):
    listen, published = PORTS[name]
    seen = set()
    for spec in SERVICES[name].get("ports", []):
        assert isinstance(spec, str) and spec.startswith(BIND + ":"), (
            f"{name}: port {spec!r} is not bound to {BIND}")
        host, container = spec[len(BIND) + 1:].split(":")
        assert host == container, f"{name}: host port {host} != container port {container}"
        seen.add(int(container))
    assert seen == published, f"{name}: publishes {sorted(seen)}, conventions say {sorted(published)}"


def test_memory_limits_on_every_service_fit_in_4_gib():
    missing = [n for n, s in SERVICES.items() if not _mem_limit(s)]
    assert not missing, f"no memory limit on {missing}"
    total = sum(_mem_bytes(_mem_limit(s)) for s in SERVICES.values())
    assert total <= 4 * 1024**3, f"memory limits add up to {total / 1024**3:.2f} GiB > 4 GiB"


# Go services that do not set GOMEMLIMIT from the container's limit themselves
# (Prometheus and Alertmanager do, by default).
GO_WITHOUT_AUTO_MEMLIMIT = ("grafana", "loki", "jaeger", "otel-collector")


@pytest.mark.parametrize("name", GO_WITHOUT_AUTO_MEMLIMIT)
def test_go_services_have_a_gomemlimit_below_their_mem_limit(name):
    svc = SERVICES[name]
    value = (svc.get("environment") or {}).get("GOMEMLIMIT")
    assert value, f"{name}: no GOMEMLIMIT (the Go runtime does not read mem_limit)"
    m = re.fullmatch(r"(\d+)MiB", value)
    assert m, f"{name}: GOMEMLIMIT {value!r} is not in MiB"
    share = int(m.group(1)) * 1024**2 / _mem_bytes(_mem_limit(svc))
    assert 0.7 <= share <= 0.9, f"{name}: GOMEMLIMIT is {share:.0%} of mem_limit (70-90 % leaves room for the rest)"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_where_the_image_allows(name):
    hc = SERVICES[name].get("healthcheck")
    assert hc and hc.get("test"), f"{name}: no healthcheck"
    test = hc["test"]
    if name in PROBED:
        assert test[:4] == ["CMD", "/probe/promtool", "check", "healthy"], test
        assert "collector-probe:/probe:ro" in SERVICES[name]["volumes"]
        init = ALL_SERVICES["volume-init"]
        assert "collector-probe:/v/probe" in init["volumes"] and "mv -f /v/probe/.promtool.new /v/probe/promtool" in \
            " ".join(init["entrypoint"]), "volume-init does not put promtool into the probe volume"
        assert init["image"] == SERVICES["prometheus"]["image"], "promtool comes from the Prometheus image"
        # promtool asks /-/healthy: every collector config's health_check answers there.
        for f in [*(REPO / "otel-collector").glob("config*.yml"), REPO / "bench" / "collector-ceiling.yml"]:
            if f.name in ("config.extras.yml", "config.extras.example.yml", "config.agent.yml"):
                continue  # layers merged over config.yml (yours; the scale-out agent)
            health = yaml.safe_load(f.read_text())["extensions"]["health_check"]
            assert health.get("path") == "/-/healthy" and health["endpoint"] == "0.0.0.0:13133", (f.name, health)
    if name == "loki":  # distroless: only the binary itself
        assert test[:2] == ["CMD", "/usr/bin/loki"] and "-health" in test
    for key in ("interval", "timeout", "retries"):
        assert key in hc, f"{name}: healthcheck without {key}"
    # 127.0.0.1: in busybox/Alpine images localhost may resolve to ::1 first, where
    # IPv4-only listeners (Jaeger's health endpoint) do not answer.
    assert "localhost" not in " ".join(test), f"{name}: healthcheck probes localhost, not 127.0.0.1"
    for port in re.findall(r"127\.0\.0\.1:(\d+)", " ".join(test)):
        assert int(port) in PORTS[name][0], f"{name}: healthcheck probes port {port}, not one it listens on"


@pytest.mark.parametrize("name", sorted(ALL_SERVICES))
def test_least_privilege(name):
    svc = ALL_SERVICES[name]
    assert not svc.get("privileged"), f"{name} is privileged"
    assert "no-new-privileges:true" in svc.get("security_opt", []), f"{name}: no no-new-privileges"
    assert svc.get("cap_drop") == ["ALL"], f"{name}: capabilities not dropped"
    if name not in ONE_SHOT:
        assert not svc.get("cap_add"), f"{name} adds capabilities {svc['cap_add']}"
        # Explicit, so that an image whose default user changes cannot make it root.
        user = str(svc.get("user", ""))
        if name in HOST_ACCESS:
            assert user == HOST_ACCESS[name]["user"], f"{name}: user {user!r}"
        else:
            assert re.fullmatch(r"[1-9]\d*:\d+", user), f"{name}: user {user!r} is not an explicit non-root uid:gid"
        assert svc.get("read_only") is True, f"{name}: writable root filesystem"
        assert 0 < int(svc.get("pids_limit", 0)) <= 4096, f"{name}: no pids_limit"
    assert svc.get("network_mode") != "host" and svc.get("pid") != "host"
    host_paths = set()
    for vol in svc.get("volumes", []):
        src, dst, *mode = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(.+))?", vol).groups()
        mode = [m for m in mode if m]
        if src.startswith("."):  # bind mount of config from the repo
            assert mode == ["ro"], f"{name}: config mount {vol!r} is not read-only"
            assert (REPO / src).is_dir(), f"{name}: mounts missing folder {src}"
        elif src.startswith(("/", "${")):  # a path of the machine
            host_paths.add(_default(src))
            assert mode and mode[0].split(",")[0] == "ro", f"{name}: {vol!r} is not read-only"
    access = HOST_ACCESS.get(name)
    assert host_paths == (access["mounts"] if access else set()), f"{name} mounts {host_paths} of the machine"
    if access:
        assert svc.get("profiles") == [access["profile"]], f"{name} runs outside its optional part"


def test_named_volumes_keep_data():
    want = {"prometheus": "/prometheus", "loki": "/loki", "grafana": "/var/lib/grafana",
            "alertmanager": "/alertmanager"}
    for name, path in want.items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES[name]["volumes"]}
        assert path in mounts, f"{name}: nothing mounted at {path}"
        assert mounts[path] in COMPOSE["volumes"], f"{name}: {path} is not a named volume"


def test_depends_on_uses_conditions_on_existing_services():
    for name, svc in ALL_SERVICES.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep, spec in deps.items():
            assert dep in ALL_SERVICES, f"{name} depends on unknown {dep}"
            cond = spec["condition"]
            expected = ("service_completed_successfully",) if dep in ONE_SHOT else (
                "service_started", "service_healthy")
            assert cond in expected, f"{name}->{dep}: {cond}"
            if cond == "service_healthy":
                assert SERVICES[dep].get("healthcheck"), f"{name} waits for {dep} healthy, which has no healthcheck"


def test_grafana_is_protected():
    env = SERVICES["grafana"]["environment"]
    assert not any("PASSWORD" in k and not k.endswith("__FILE") for k in env), (
        "the Grafana password must reach Grafana as a file, not an environment variable")
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"
    assert env.get("GF_USERS_ALLOW_SIGN_UP") == "false"


def test_no_lifecycle_api_and_profiles_selectable():
    prom = " ".join(SERVICES["prometheus"]["command"])
    am = SERVICES["alertmanager"]["environment"]
    assert "--config.file=/etc/prometheus/${PROMETHEUS_CONFIG_FILE:-prometheus.yml}" in prom
    assert am["ALERTMANAGER_CONFIG_FILE"] == "${ALERTMANAGER_CONFIG_FILE:-alertmanager.yml}"
    for flag in ("--web.enable-otlp-receiver", "--enable-feature=exemplar-storage"):
        assert flag in prom, f"prometheus started without {flag}"
    # /-/quit and /-/reload take a cross-site POST from any page in the user's browser.
    assert "--web.enable-lifecycle" not in prom, "Prometheus' lifecycle API is on"


def test_demo_services_export_to_the_collector():
    for name in DEMO_ROLES:
        svc = SERVICES[name]
        env = svc["environment"]
        assert svc["command"] == ["demo-app", name]
        assert env["OTEL_SERVICE_NAME"] == name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"


def test_env_example_covers_compose_variables():
    text = (REPO / ".env.example").read_text()
    raw = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)(?::?[-?])", raw))
    documented = set(re.findall(r"^#?(\w+)=", text, re.MULTILINE))
    assert not used - documented, f".env.example does not mention {sorted(used - documented)}"
    for secret in ("GRAFANA_ADMIN_PASSWORD", "DEMO_ADMIN_TOKEN"):
        assert re.search(rf"^{secret}=$", text, re.MULTILINE), f"{secret} must be empty in .env.example"


# ---- component configs: every address points at a real service and port ------------

def _host_port(addr: str) -> tuple[str, int]:
    addr = re.sub(r"^\w+://", "", _default(addr)).split("/", 1)[0]
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def _assert_listens(addr: str, where: str):
    host, port = _host_port(addr)
    assert host in PORTS, f"{where}: {addr} names no compose service"
    assert port in PORTS[host][0], f"{where}: {host} does not listen on {port} ({sorted(PORTS[host][0])})"


def _scrape_configs() -> list[dict]:
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    jobs = list(prom.get("scrape_configs") or [])
    for pattern in prom.get("scrape_config_files", []):
        for f in sorted((REPO / "prometheus").glob(pattern)):
            jobs += yaml.safe_load(f.read_text())["scrape_configs"]
    return jobs


def _profile_targets() -> dict[str, list[dict]]:
    """profile -> its target groups (prometheus/profiles/<profile>.yml)."""
    return {f.stem: yaml.safe_load(f.read_text()) for f in sorted((REPO / "prometheus" / "profiles").glob("*.yml"))}


def test_every_service_is_scraped_by_its_own_job():
    """Each compose service is one job (named after it): a static target, or a target
    group of its optional part's file (`job` label), which the part's scrape job reads."""
    jobs: dict[str, list[str]] = {}
    sd_jobs = {}
    for j in _scrape_configs():
        if j["job_name"] == "local":
            continue  # yours: prometheus/local/targets/
        for sc in j.get("static_configs", []):
            jobs.setdefault(j["job_name"], []).extend(sc["targets"])
        for sd in j.get("file_sd_configs", []):
            for f in sd["files"]:
                m = re.fullmatch(r"/prometheus/sd/(\w+)\.yml", f)
                assert m, f"job {j['job_name']} reads {f}, not a part's file (entrypoint.sh writes /prometheus/sd/)"
                sd_jobs[m.group(1)] = j["job_name"]
    profiles = _profile_targets()
    assert set(sd_jobs) == set(profiles), f"parts with a scrape job {sorted(sd_jobs)} vs target files {sorted(profiles)}"
    for profile, groups in profiles.items():
        for g in groups:
            jobs.setdefault(g["labels"]["job"], []).extend(g["targets"])
            for t in g["targets"]:
                assert profile in ALL_SERVICES[_host_port(t)[0]].get("profiles", []), (
                    f"{t} is in profiles/{profile}.yml, but its service is not in the {profile} profile")
    assert set(jobs) == set(SERVICES), (
        f"jobs {sorted(set(jobs) ^ set(SERVICES))} do not match compose services one to one")
    for name, targets in jobs.items():
        assert targets, f"job {name} has no targets"
        for t in targets:
            host, port = _host_port(t)
            if name == "prometheus" and host == "localhost":  # itself, wherever it runs
                t = f"prometheus:{port}"
            assert _host_port(t)[0] == name, f"job {name} scrapes {t}, another service"
            _assert_listens(t, f"scrape job {name}")


def test_every_optional_part_is_a_compose_profile_with_its_targets():
    """COMPOSE_PROFILES switches a part on and off: compose starts its services and
    Prometheus' entrypoint hands out its targets. A part's services carry its profile and
    no other service does; the demo is on by default (.env.example)."""
    parts = {p for s in ALL_SERVICES.values() for p in s.get("profiles", [])}
    assert parts == set(_profile_targets()), f"profiles {sorted(parts)} vs prometheus/profiles/ {sorted(_profile_targets())}"
    env = dict(re.findall(r"^(\w+)=(.*)$", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert env.get("COMPOSE_PROFILES") == "demo", "the demo is not on by default"
    assert {n for n, s in ALL_SERVICES.items() if "demo" in s.get("profiles", [])} == {"shop", "inventory", "loadgen"}
    prom = SERVICES["prometheus"]
    assert prom["environment"]["COMPOSE_PROFILES"] == "${COMPOSE_PROFILES:-}"
    assert prom["entrypoint"] == ["/bin/sh", "/etc/prometheus/entrypoint.sh"]


def test_prometheus_alerting_and_rules():
    prom = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    for am in prom["alerting"]["alertmanagers"]:
        for t in am["static_configs"][0]["targets"]:
            _assert_listens(t, "prometheus alerting")
    assert prom["rule_files"] == ["rules/*.yml", "local/rules/*.yml"]  # the stack's, then yours
    # Retention is set by flags from the environment (compose), which a retention section
    # in the file would override.
    assert "retention" not in prom["storage"]["tsdb"], "prometheus.yml's retention would override the flags"
    flags = " ".join(SERVICES["prometheus"]["command"])
    assert "--storage.tsdb.retention.time=${PROMETHEUS_RETENTION_TIME:-" in flags
    assert "--storage.tsdb.retention.size=${PROMETHEUS_RETENTION_SIZE:-" in flags


OTEL = yaml.safe_load((REPO / "otel-collector" / "config.yml").read_text())


def test_collector_exporters_point_at_real_services():
    exp = OTEL["exporters"]
    targets = {k: v["endpoint"] for k, v in exp.items() if "endpoint" in v}
    assert targets, "no exporter endpoints"
    for name, endpoint in targets.items():
        _assert_listens(endpoint, f"collector exporter {name}")
    assert _default(exp["otlp_http/prometheus"]["endpoint"]) == "http://prometheus:9090/api/v1/otlp"
    assert _default(exp["otlp_http/loki"]["endpoint"]) == "http://loki:3100/otlp"
    assert _host_port(exp["otlp_grpc/jaeger"]["endpoint"]) == ("jaeger", 4317)


def test_collector_pipelines():
    pipes = OTEL["service"]["pipelines"]
    assert set(pipes) == {"traces", "metrics", "logs", "logs/containers"}
    for name, p in pipes.items():
        assert p["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
    assert "span_metrics" in pipes["traces"]["exporters"] and "span_metrics" in pipes["metrics"]["receivers"]
    assert pipes["logs"]["exporters"] == ["otlp_http/loki"]


def test_every_backend_exporter_queues_on_disk_and_retries():
    """Nothing lost through an outage: what a backend cannot take yet waits in a queue
    that survives a collector restart, and is retried."""
    pipes = OTEL["service"]["pipelines"]
    used = {e for p in pipes.values() for e in p["exporters"]} - set(OTEL.get("connectors", {}))
    storages = set(OTEL["service"]["extensions"])
    for name in used:
        exp = OTEL["exporters"][name]
        queue = exp.get("sending_queue") or {}
        assert queue.get("storage") in storages, f"{name}: sending queue not on a storage extension"
        assert OTEL["extensions"][queue["storage"]].get("directory"), f"{name}: storage without a directory"
        assert exp.get("retry_on_failure", {}).get("enabled") is True, f"{name}: retries off"
    # The Prometheus OTLP endpoint refuses a point older than one it already has.
    assert OTEL["exporters"]["otlp_http/prometheus"]["sending_queue"]["num_consumers"] == 1


def test_collector_queue_lives_on_a_named_volume():
    directory = _default(OTEL["extensions"]["file_storage/queue"]["directory"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["otel-collector"]["volumes"]}
    volume = next((src for dst, src in mounts.items() if directory.startswith(dst + "/")), None)
    assert volume in COMPOSE["volumes"], f"{directory} is not on a named volume: {mounts}"


def test_collector_and_jaeger_listen_on_all_interfaces():
    jaeger = yaml.safe_load((REPO / "jaeger" / "jaeger.yml").read_text())
    for where, cfg in (("otel-collector", OTEL), ("jaeger", jaeger)):
        for proto in ("grpc", "http"):
            ep = cfg["receivers"]["otlp"]["protocols"][proto]["endpoint"]
            assert ep.startswith("0.0.0.0:"), f"{where} OTLP {proto} on {ep}: unreachable from other containers"
            assert int(ep.rsplit(":", 1)[1]) in PORTS[where][0]
        reader = cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
        assert reader["host"] == "0.0.0.0" and reader["port"] == 8888
    assert OTEL["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    assert jaeger["extensions"]["healthcheckv2"]["http"]["endpoint"].endswith(":13133")


def test_jaeger_monitor_tab_reads_span_metrics_from_prometheus():
    jaeger = yaml.safe_load((REPO / "jaeger" / "jaeger.yml").read_text())
    ext = jaeger["extensions"]
    metrics_store = ext["jaeger_query"]["storage"]["metrics"]
    prom = ext["jaeger_storage"]["metric_backends"][metrics_store]["prometheus"]
    _assert_listens(prom["endpoint"], "jaeger metrics backend")
    # normalize_* give traces_span_metrics_calls_total / _duration_milliseconds_bucket.
    assert prom["normalize_calls"] is True and prom["normalize_duration"] is True


def test_jaeger_keeps_traces_on_a_named_volume_bounded_by_a_ttl():
    """Traces survive a restart: the default trace store is Badger on the jaeger-data
    volume, bounded in time; the opt-in in-memory store is bounded in traces."""
    jaeger = yaml.safe_load((REPO / "jaeger" / "jaeger.yml").read_text())
    ext = jaeger["extensions"]
    backends = ext["jaeger_storage"]["backends"]
    store = _default(ext["jaeger_query"]["storage"]["traces"])
    assert store == _default(jaeger["exporters"]["jaeger_storage_exporter"]["trace_storage"]), (
        "the query and the storage exporter use different trace stores")
    badger = backends[store]["badger"]
    assert badger["ephemeral"] is False
    assert re.fullmatch(r"\d+h", _default(badger["ttl"]["spans"])), badger["ttl"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["jaeger"]["volumes"]}
    for directory in badger["directories"].values():
        path = _default(directory)
        volume = next((src for dst, src in mounts.items() if path.startswith(dst + "/")), None)
        assert volume in COMPOSE["volumes"], f"Badger's {path} is not on a named volume: {mounts}"
    memory = [b["memory"] for b in backends.values() if "memory" in b]
    assert all(_default(str(m["max_traces"])).isdigit() for m in memory), "unbounded in-memory trace store"


def test_loki_config():
    loki = yaml.safe_load((REPO / "loki" / "loki.yml").read_text())
    assert loki["server"]["http_listen_port"] in PORTS["loki"][0]
    schema = loki["schema_config"]["configs"][-1]
    assert (schema["store"], schema["schema"]) == ("tsdb", "v13")
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["limits_config"]["retention_period"] not in ("0", "0s")
    # Data under /loki, the named volume in compose.
    for path in (loki["common"]["path_prefix"], loki["compactor"]["working_directory"]):
        assert path.startswith("/loki"), f"{path} is outside the loki-data volume"


# ---- each component folder references only files inside itself ---------------------

_MOUNTS = {  # folder -> where compose mounts it, plus the data volume paths it may use
    "prometheus": ("/etc/prometheus", ["/prometheus"]),
    "alertmanager": ("/etc/alertmanager", ["/alertmanager"]),
    "loki": ("/etc/loki", ["/loki"]),
    "jaeger": ("/etc/jaeger", ["/var/lib/jaeger"]),
    "otel-collector": ("/etc/otelcol", ["/var/lib/otelcol"]),
}


@pytest.mark.parametrize("folder", sorted(_MOUNTS))
def test_component_folder_is_self_contained(folder):
    mount, data = _MOUNTS[folder]
    base = REPO / folder
    for f in sorted(base.rglob("*.y*ml")):
        if f.name == "builder-config.yaml":
            continue  # a build manifest, not read by the running component
        text = f.read_text()
        # Relative references must stay inside the folder.
        for rel in re.findall(r"(?<![\w.])((?:\.\./)+[\w./*-]+)", re.sub(r"#.*", "", text)):
            target = (f.parent / rel).resolve()
            assert target.is_relative_to(base.resolve()), (
                f"{f.relative_to(REPO)} references {rel}, outside {folder}/")
        # Absolute file paths must be the folder's own mount or its data volume.
        # (Comments are not read: config.extras.yml's worked example names a user's path.)
        # A worked example may read a folder its own comments tell the user to mount.
        told = re.findall(r"^#.*:(/[\w./-]+):ro\s*$", text, re.MULTILINE) if "examples" in f.parts else []
        for path in re.findall(r"(?<![\w:/.])(/(?:etc|var|tmp|loki|prometheus|alertmanager)[\w./*-]*)",
                               re.sub(r"#.*", "", text)):
            ok = path.startswith(mount + "/") or any(path == d or path.startswith(d + "/") for d in [*data, *told])
            assert ok, f"{f.relative_to(REPO)} references {path}, outside {folder}/ and its volume"
        for pattern in re.findall(r"^\s*-\s*(rules/\S+|[\w-]+\.yml)\s*$", text, re.MULTILINE):
            if folder == "prometheus":
                assert list(base.glob(pattern)), f"{f.relative_to(REPO)} lists {pattern}, which matches nothing"


def test_compose_mounts_each_component_where_its_config_expects():
    for folder, (mount, _) in _MOUNTS.items():
        svc = "otel-collector" if folder == "otel-collector" else folder
        assert f"./{folder}:{mount}:ro" in SERVICES[svc]["volumes"], f"{svc}: ./{folder} not at {mount}"


# ---- addresses in the other components' files (owned elsewhere, checked here) -------

def test_grafana_datasources_point_at_real_services():
    ds = yaml.safe_load((REPO / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())["datasources"]
    grafana_env = SERVICES["grafana"]["environment"]
    # ${VAR}: Grafana expands it from its environment, which compose sets.
    urls = [re.sub(r"^\$\{(\w+)\}$", lambda m: grafana_env[m.group(1)], d["url"]) for d in ds if "url" in d]
    assert urls, "no datasource URLs"
    for u in urls:
        _assert_listens(u, f"grafana datasource {u}")


def test_alertmanager_webhooks_point_at_real_services():
    am = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    hooks = [w["url"] for r in am.get("receivers", []) for w in r.get("webhook_configs", [])]
    assert hooks, "no webhook receiver: alerts would go nowhere"
    for u in hooks:
        _assert_listens(u, "alertmanager webhook")


def test_documented_memory_total_matches_limits():
    """The header states the total with the default parts (the demo) and with every part."""
    def total(services) -> int:
        return sum(_mem_bytes(_mem_limit(s)) for s in services) // 1024**2
    default = total(s for s in SERVICES.values() if set(s.get("profiles", ["demo"])) & {"demo"})
    stated = {int(n) for n in re.findall(r"(\d+) MiB in\s*(?:#\s*)?total", (REPO / "docker-compose.yml").read_text())}
    assert stated == {default, total(SERVICES.values())}, (
        f"docker-compose.yml states {stated} MiB in total, limits add up to {default} and {total(SERVICES.values())}")
