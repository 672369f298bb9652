#!/usr/bin/env python3
"""`make validate`: run each component's own validator on its config files.

Every tool runs from the image docker-compose.yml would run (the *_IMAGE env var, else
the pinned default), with the component folder mounted read-only and no network:

  docker compose config -q                      docker-compose.yml (+ .env), and with
                                                each overlay (scale-out, benchmark)
  promtool check config / check rules / test    prometheus/
  amtool check-config                           alertmanager/
  otelcol-contrib validate                      every collector config (the stack's as merged
                                                with forwarding and your extras, scale-out
                                                tiers, the benchmark's ceiling)
  jaeger validate                               jaeger/jaeger.yml (and with auth.yml)
  promtool check web-config                     the STACK_AUTH web config (yours once
                                                `make up` wrote it, else a sample)
  telegraf config check                         telegraf/telegraf.conf
  loki -verify-config                           loki/loki.yml

An image that is neither local nor pullable is skipped and named; it fails instead when
its variable is listed in REQUIRED_IMAGES (comma-separated). A broken file fails with the
tool's own message and the file's name. tests/config/test_validators.py runs the same
checks (checks() below) through tests/tooling.py.

Usage: scripts/validate.py [--root DIR]   (DIR: a copy of the repo layout; default: repo)
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    from scripts import envfile, places
except ImportError:  # run as a script: scripts/ is on the path
    import envfile
    import places

REPO = Path(__file__).resolve().parents[1]
# ${X_IMAGE:-pinned/ref:tag}: how every compose file names an image (the pin written once).
IMAGE_PIN = re.compile(r"\$\{(\w+_IMAGE):-([^}]+)\}")



@dataclass
class Check:
    """One validator run. `var` is the *_IMAGE variable of the image holding the tool;
    None means a host command (docker compose)."""
    name: str
    var: str | None
    entrypoint: str
    args: list[str]
    mounts: dict[Path, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # repo-relative, for messages
    env: dict[str, str] = field(default_factory=dict)  # settings the files need


# What the forwarding files need to be validated, as a user would set them.
FORWARD_SETTINGS = {"FORWARD_OTLP_ENDPOINT": "backend.example.com:4317",
                    "PROMETHEUS_REMOTE_WRITE_URL": "https://backend.example.com/api/v1/push"}


def _rel(root: Path, p: Path) -> str:
    return str(p.relative_to(root))


def _rel_any(p: Path) -> str:
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


EXTRAS = "config.extras.yml"  # the user's additions to the collector (loaded last)
LAYER = "config.agent.yml"    # the scale-out agent: a layer over config.yml


def collector_merges(root: Path = REPO, user: bool = True) -> list[list[Path]]:
    """The file lists the stack's collectors merge, in order: the single collector and the
    scale-out agent (config.agent.yml is a layer over config.yml), each as shipped (with
    the user's extras when `user`) and with the copy to a backend over each protocol; and
    each worked example of otel-collector/examples/ as the extras."""
    otel = root / "otel-collector"
    if not (otel / "config.yml").exists():
        return []
    extras = [otel / EXTRAS] if user and (otel / EXTRAS).exists() else []
    roles = [[otel / "config.yml"]] + ([[otel / "config.yml", otel / LAYER]] if (otel / LAYER).exists() else [])
    forwards = [f for f in sorted(otel.glob("forward.*.yml")) if f.name != "forward.tee.yml"]
    merges = []
    for role in roles:
        merges += [[*role, *extras]] + [[*role, otel / "forward.tee.yml", fwd, *extras] for fwd in forwards]
    merges += [[otel / "config.yml", ex] for ex in sorted((otel / "examples").glob("*.yml"))]
    return merges


AUTH_MOUNT = "/run/stack-auth"  # docker-compose.auth.yml
# What scripts/auth.py needs to write a folder of STACK_AUTH files to validate against.
SAMPLE_AUTH = {"STACK_AUTH_USER": "stack", "STACK_AUTH_PASSWORD": "validate", "STACK_OTLP_TOKEN": "validate"}


def auth_folder(root: Path, user: bool) -> Path:
    """The STACK_AUTH files the auth configs are checked with: the user's own (make
    validate, once `make up` wrote them with STACK_AUTH on: their certificate too), else a
    sample written under build/ (scripts/auth.py, as `make up` does)."""
    if user:
        mine = envfile.secrets_dir(root / ".env") / "auth"
        if (mine / "web.yml").exists():
            return mine
    try:  # needs the venv (bcrypt, cryptography)
        from scripts import auth
    except ImportError:  # run as a script: scripts/ is on the path
        import auth

    folder, _ = auth.render(SAMPLE_AUTH, root / "build" / "validate-auth")
    return folder


def checks(root: Path = REPO, user: bool = True) -> list[Check]:
    """The validator runs for the config files present under `root`: with `user` (make
    validate), the user's places too (scripts/places.py); without (the project's tests),
    empty places in their stead, so a user's files never fail the project's tests. The
    configs of the stack shared (STACK_AUTH) are checked with its files (auth_folder)."""
    out: list[Check] = []
    auth_files = auth_folder(root, user)
    out.append(Check("docker compose config", None, "docker",
                     ["compose", "-f", str(root / "docker-compose.yml"), "config", "-q"],
                     files=["docker-compose.yml"]))
    scale = root / "docker-compose.scale.yml"
    for layers in ([scale], [root / "bench" / "docker-compose.bench.yml"],
                   # as `make up-scale` loads them (scripts/compose_info.py compose_files)
                   [scale, root / "docker-compose.forward-otlp.yml", root / "docker-compose.scale.forward-otlp.yml"],
                   [scale, root / "docker-compose.remote-write.yml", root / "docker-compose.scale.remote-write.yml"],
                   [root / "docker-compose.forward-otlp.yml"], [root / "docker-compose.remote-write.yml"],
                   [root / "docker-compose.auth.yml"], *([[root / "docker-compose.extras.yml"]] if user else [])):
        if all(f.exists() for f in layers):
            files = [root / "docker-compose.yml", *layers]
            out.append(Check(f"docker compose config +{' +'.join(_rel(root, f) for f in layers)}", None, "docker",
                             ["compose", *[a for f in files for a in ("-f", str(f))], "config", "-q"],
                             files=[_rel(root, f) for f in files], env=FORWARD_SETTINGS))

    prom = root / "prometheus"
    pm: dict[Path, str] = {prom: "/etc/prometheus", auth_files: AUTH_MOUNT}
    if not user:  # an empty prometheus/local over the user's
        empty = places.empty_copy(root / "build" / "empty-places")
        pm[empty["/etc/prometheus/local"]] = "/etc/prometheus/local"
    # Every top-level Prometheus file (prometheus.yml, the drill profile, ...); promtool
    # also loads the rule files and scrape_config_files each one references.
    for cfg in sorted(prom.glob("prometheus*.yml")):
        out.append(Check(f"promtool check config {_rel(root, cfg)}", "PROMETHEUS_IMAGE",
                         "promtool", ["check", "config", f"/etc/prometheus/{cfg.name}"],
                         pm, [_rel(root, cfg)]))
    out.append(Check("promtool check web-config (STACK_AUTH)", "PROMETHEUS_IMAGE", "promtool",
                     ["check", "web-config", f"{AUTH_MOUNT}/web.yml"], pm, [f"{_rel_any(auth_files)}/web.yml"]))
    rules = sorted((prom / "rules").glob("*.yml"))
    if rules:
        out.append(Check("promtool check rules prometheus/rules/*.yml", "PROMETHEUS_IMAGE",
                         "promtool", ["check", "rules",
                                      *[f"/etc/prometheus/rules/{r.name}" for r in rules]],
                         pm, [_rel(root, r) for r in rules]))
    targets = [f for f in sorted((prom / "local" / "targets").glob("*")) if f.suffix in (".yml", ".yaml", ".json")]
    if user and targets:
        # Discovery as Prometheus runs it, over your target files: promtool reports a file it
        # cannot read and lists what each one yields.
        out.append(Check("promtool check service-discovery (prometheus/local/targets)", "PROMETHEUS_IMAGE",
                         "promtool", ["check", "service-discovery", "/etc/prometheus/prometheus.yml", "local"],
                         pm, [_rel(root, f) for f in targets]))
    tests = sorted((prom / "tests").glob("*.yml"))
    if tests:
        # Rule unit tests refer to rule files relative to the test file.
        out.append(Check("promtool test rules prometheus/tests/*.yml", "PROMETHEUS_IMAGE",
                         "promtool", ["test", "rules",
                                      *[f"/etc/prometheus/tests/{t.name}" for t in tests]],
                         pm, [_rel(root, t) for t in tests]))

    am = root / "alertmanager"
    for cfg in sorted(am.glob("alertmanager*.yml")):
        out.append(Check(f"amtool check-config {_rel(root, cfg)}", "ALERTMANAGER_IMAGE",
                         "amtool", ["check-config", f"/etc/alertmanager/{cfg.name}"],
                         {am: "/etc/alertmanager"}, [_rel(root, cfg)]))

    # The stack's collector as compose runs it (config.yml, the forwarding file when that
    # is on, the user's config.extras.yml last; each worked example in place of the
    # extras); the scale-out tiers, the benchmark's ceiling, the forwarding tests' remote.
    otel = root / "otel-collector"
    for files in collector_merges(root, user):
        out.append(Check(f"otelcol validate {' + '.join(_rel(root, f) for f in files)}", "OTELCOL_IMAGE",
                         "/otelcol-contrib",
                         ["validate", *[f"--config=/etc/otelcol/{f.relative_to(otel)}" for f in files]],
                         # The secret headers file, empty: what `make up` writes when none are set.
                         {otel: "/etc/otelcol", Path("/dev/null"): "/run/secrets/forward_otlp_headers"},
                         [_rel(root, f) for f in files], env=FORWARD_SETTINGS))
    for shared in (otel / "edge.yml", otel / "config.auth.yml"):  # they read scripts/auth.py's files
        if shared.exists():
            out.append(Check(f"otelcol validate {_rel(root, shared)} (STACK_AUTH)", "OTELCOL_IMAGE", "/otelcol-contrib",
                             ["validate", f"--config=/etc/otelcol/{shared.name}"],
                             {otel: "/etc/otelcol", auth_files: AUTH_MOUNT}, [_rel(root, shared)]))
    for cfg in [*sorted(otel.glob("config.*.yml")), *sorted((root / "bench").glob("*collector*.yml")),
                *sorted((root / "tests" / "forward").glob("*collector*.yml"))]:
        if cfg.name in (EXTRAS, "config.extras.example.yml", LAYER, "config.auth.yml"):  # validated above
            continue
        out.append(Check(f"otelcol validate {_rel(root, cfg)}", "OTELCOL_IMAGE",
                         "/otelcol-contrib", ["validate", f"--config=/etc/otelcol/{cfg.name}"],
                         {cfg.parent: "/etc/otelcol"}, [_rel(root, cfg)], env={"REMOTE_OTLP_TOKEN": "t"}))

    telegraf = root / "telegraf" / "telegraf.conf"
    if telegraf.exists():
        # The config as compose runs it: your CONTAINER_LOGS_EXCLUDE (make validate); for
        # the project's tests, both forms .env.example shows.
        if user:
            exclude = os.environ.get("CONTAINER_LOGS_EXCLUDE",
                                     envfile.read(root / ".env").get("CONTAINER_LOGS_EXCLUDE", ""))
        else:
            exclude = "{*-remote-otlp-*,chatty*}"
        out.append(Check("telegraf config check telegraf/telegraf.conf", "TELEGRAF_IMAGE", "telegraf",
                         ["config", "check", "--strict-env-handling", "--config", "/etc/telegraf/telegraf.conf"],
                         {telegraf.parent: "/etc/telegraf"}, [_rel(root, telegraf)],
                         env={"TELEGRAF_LOGS_ENDPOINT": "tcp://otel-collector:54525",
                              "CONTAINER_LOGS_EXCLUDE": exclude}))

    jaeger = root / "jaeger" / "jaeger.yml"
    if jaeger.exists():
        out.append(Check("jaeger validate jaeger/jaeger.yml", "JAEGER_IMAGE",
                         "/cmd/jaeger/jaeger-linux",
                         ["validate", "--config=/etc/jaeger/jaeger.yml"],
                         {jaeger.parent: "/etc/jaeger"}, [_rel(root, jaeger)]))
        layer = jaeger.parent / "auth.yml"
        if layer.exists():
            out.append(Check("jaeger validate jaeger/jaeger.yml + jaeger/auth.yml (STACK_AUTH)", "JAEGER_IMAGE",
                             "/cmd/jaeger/jaeger-linux",
                             ["validate", "--config=/etc/jaeger/jaeger.yml", "--config=/etc/jaeger/auth.yml"],
                             {jaeger.parent: "/etc/jaeger", auth_files: AUTH_MOUNT},
                             [_rel(root, jaeger), _rel(root, layer)], env={"STACK_AUTH_USER": "stack"}))

    loki = root / "loki" / "loki.yml"
    if loki.exists():
        out.append(Check("loki -verify-config loki/loki.yml", "LOKI_IMAGE", "/usr/bin/loki",
                         ["-config.file=/etc/loki/loki.yml", "-config.expand-env=true", "-verify-config"],
                         {loki.parent: "/etc/loki"}, [_rel(root, loki)]))
    return out


# ---- running ------------------------------------------------------------------------

# Every compose file of the project: the stack, its overlays, the benchmark's.
COMPOSE_FILES = (REPO / "docker-compose.yml", REPO / "docker-compose.scale.yml",
                 REPO / "bench" / "docker-compose.bench.yml", REPO / "tests" / "upgrade" / "docker-compose.previous.yml")


@functools.cache
def image_defaults() -> dict[str, str]:
    """X_IMAGE -> its pinned default, from the compose files (where each is written once)."""
    pins: dict[str, str] = {}
    for f in COMPOSE_FILES:
        if f.exists():
            for var, ref in IMAGE_PIN.findall(f.read_text()):
                pins.setdefault(var, ref)
    return pins


def image(var: str) -> str:
    return os.environ.get(var) or image_defaults()[var]


def required_images() -> set[str]:
    return {v.strip() for v in os.environ.get("REQUIRED_IMAGES", "").split(",") if v.strip()}


@functools.cache
def docker_works() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


@functools.cache
def image_available(ref: str) -> bool:
    """True when the image is local or could be pulled (tried once)."""
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0:
        return True
    return subprocess.run(["docker", "pull", "-q", ref], capture_output=True).returncode == 0


def missing_image(var: str) -> str | None:
    """Why the image `var` names cannot be run here (no engine, or neither local nor
    pullable), or None when it can."""
    ref = image(var)
    if not docker_works():
        return f"no Docker engine to run {ref} ({var})"
    if not image_available(ref):
        return f"image {ref} ({var}) is neither local nor pullable"
    return None


def docker_cmd(check: Check, ref: str) -> list[str]:
    cmd = ["docker", "run", "--rm", "--network", "none", "--entrypoint", check.entrypoint]
    for host, container in check.mounts.items():
        cmd += ["-v", f"{Path(host).resolve()}:{container}:ro"]
    for key, value in check.env.items():
        cmd += ["-e", f"{key}={value}"]
    return [*cmd, ref, *check.args]


def run(check: Check, root: Path = REPO, timeout: int = 180) -> tuple[str, str]:
    """Run one check. Returns (status, detail): status is PASS, FAIL or SKIP."""
    if check.var is None:
        if shutil.which("docker") is None:
            return "SKIP", "docker CLI not found"
        p = subprocess.run([check.entrypoint, *check.args], capture_output=True,
                           text=True, timeout=timeout, cwd=root, env={**os.environ, **check.env})
    else:
        if reason := missing_image(check.var):
            return "SKIP", reason
        p = subprocess.run(docker_cmd(check, image(check.var)), capture_output=True, text=True,
                           timeout=timeout)
    detail = (p.stdout + p.stderr).strip()
    return ("PASS" if p.returncode == 0 else "FAIL"), detail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=REPO)
    a = ap.parse_args(argv)
    root = a.root.resolve()
    required = required_images()
    failed, skipped = [], []
    for c in checks(root):
        status, detail = run(c, root)
        if status == "SKIP" and c.var in required:
            status, detail = "FAIL", f"{detail}, but REQUIRED_IMAGES lists {c.var}"
        print(f"{status:4}  {c.name}", flush=True)
        if status == "FAIL":
            failed.append(c)
            print(f"      file(s): {', '.join(c.files)}")
            for line in detail.splitlines():
                print(f"      | {line}")
        elif status == "SKIP":
            skipped.append((c, detail))
            print(f"      skipped: {detail}")
    print()
    if skipped:
        print("Not validated here (tool missing):")
        for c, why in skipped:
            print(f"  - {c.name}: {why}")
    if failed:
        print(f"{len(failed)} check(s) FAILED: {', '.join(c.name for c in failed)}")
        return 1
    print("All available validators passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
