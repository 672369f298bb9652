"""The e2e stacks: which compose services can run here and bringing them up on the real
compose files (compose_session: the default stack in tests/e2e, the scale-out profile in
tests/scale; drill_stack: the drill profile), the service x signal matrix and the
session's measurements. Talking to the services is clients.py, waiting is polling.py,
memory sampling docker_stats.py; ordering and the end-of-run summary are
tests/e2e/report.py.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from testcontainers.compose import DockerCompose

from scripts import compose_info, compose_plan, envfile, init_env, places
from scripts.compose_plan import Plan, plan_stack, stand_ins
from scripts.validate import image
from tests.e2e import clients
from tests.e2e.clients import ENDPOINTS, HOST
from tests.e2e.docker_stats import MemorySampler
from tests.tooling import REPO

# Which stack services each signal travels through: the service x signal matrix.
# A test names the services it needs (a subset of its signal's row, sometimes more).
SIGNALS: dict[str, tuple[str, ...]] = {
    "metrics": ("prometheus", "otel-collector", "shop", "inventory", "loadgen", "alert-sink"),
    "traces": ("jaeger", "otel-collector", "prometheus", "shop", "inventory"),
    "logs": ("loki", "otel-collector", "jaeger", "shop", "inventory"),
    "alerts": ("prometheus", "alertmanager", "alert-sink", "shop", "inventory", "loadgen"),
    "dashboards": ("grafana", "prometheus", "loki", "jaeger", "alertmanager", "otel-collector", "shop", "inventory"),
    "no-loss": ("jaeger", "otel-collector", "prometheus", "alertmanager", "alert-sink", "loki", "shop",
                "inventory", "loadgen"),
    "resilience": ("otel-collector", "prometheus", "shop", "inventory", "jaeger"),
    "restarts": ("prometheus", "jaeger", "alertmanager", "alert-sink", "otel-collector", "shop", "inventory", "loki"),
}


def matrix(started: list[str], columns: list[str]) -> list[str]:
    """The service x signal matrix as text: + needed and running, - needed but not started."""
    width = max(map(len, SIGNALS))
    lines = [" " * width + "  " + " ".join(columns)]
    for signal, needs in SIGNALS.items():
        cells = [("+" if c in started else "-") if c in needs else "." for c in columns]
        lines.append(signal.ljust(width) + "  " + " ".join(x.center(len(c)) for x, c in zip(cells, columns)))
    return lines


# What the session learns and prints at the end (and writes to build/).
MEASUREMENTS: dict[str, Any] = {}


# ---------------------------------------------------------------- env for the compose run

def generated_env(project: str, drill: dict[str, str], workdir, shared: bool = False) -> dict[str, str]:
    """What `make up` would put into .env, with fresh secrets: .env.example's values
    (if present), every secret it generates (scripts/init_env.py), loopback binds; the
    secrets also as files under workdir/secrets (SECRETS_DIR), as `make up` does; `shared`:
    STACK_AUTH on, and its folder of certificates and logins (scripts/auth.py) there too."""
    env = envfile.read(REPO / ".env.example")
    env.update({name: secrets.token_urlsafe(24) for name in init_env.SECRETS})
    env.update(COMPOSE_PROJECT_NAME=project, **drill)
    env["SECRETS_DIR"] = str(workdir / "secrets")
    envfile.write_secrets(env, workdir / "secrets")
    if shared:
        from scripts import auth

        env["STACK_AUTH"] = "on"
        auth.render(env, workdir / "secrets")
    return env


def drill_profile() -> dict[str, str]:
    """The alert-drill profile (issue 5): faster scrape/evaluation/grouping, selected by
    env vars naming config files that live beside the normal ones."""
    env = {}
    for var, folder, default_name in (
        ("PROMETHEUS_CONFIG_FILE", "prometheus", "prometheus.drill.yml"),
        ("ALERTMANAGER_CONFIG_FILE", "alertmanager", "alertmanager.drill.yml"),
    ):
        if (REPO / folder / default_name).exists():
            env[var] = default_name
    return env


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


class Stack:
    """The running compose project: what was planned, and `docker compose` commands on it
    (same project name, env file and compose file as the session's `up`)."""

    def __init__(self, compose_cmd: list[str], plan: Plan, env: dict[str, str]):
        self.compose_cmd = compose_cmd
        self.plan = plan
        self.env = env
        self.project = env["COMPOSE_PROJECT_NAME"]

    def compose(self, *args: str, timeout: float = 300, check: bool = True,
                env_override: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`docker compose ARGS` on this project (`env_override`: settings for this run only)."""
        proc = subprocess.run([*self.compose_cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, **env_override} if env_override else None)
        if check and proc.returncode != 0:
            raise AssertionError(f"`docker compose {' '.join(args)}` failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        if args and args[0] in ("up", "start", "restart"):
            self.refresh_endpoints()  # Docker picks new host ports for (re)started containers
        return proc

    def down(self, timeout: float = 600) -> None:
        """Removes every container and volume of the project, whichever profiles are on (every
        profile named: a test switches parts on and off)."""
        self.compose("--profile", "*", "down", "--volumes", "--remove-orphans", check=False, timeout=timeout)

    def containers(self) -> dict[str, dict]:
        """compose ps -a, by service: State, Health, Publishers, ..."""
        return {row["Service"]: row for row in compose_info.ps(self.compose_cmd)}

    def refresh_endpoints(self) -> None:
        """Reads the published ports back (they change when a service is recreated)."""
        ENDPOINTS.clear()
        for service, ports in compose_info.published(self.compose_cmd).items():
            ENDPOINTS[service] = {target: port for target, (_, port) in ports.items()}

    def running(self) -> set[str]:
        return {svc for svc, row in self.containers().items() if row.get("State") == "running"}

    def logs(self, *services: str, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), *services, check=False).stdout

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['DEMO_ADMIN_TOKEN']}"}

    @property
    def grafana_auth(self) -> tuple[str, str]:
        return (self.env.get("GRAFANA_ADMIN_USER", "admin"), self.env["GRAFANA_ADMIN_PASSWORD"])



# ---------------------------------------------------------------- one compose session

@contextlib.contextmanager
def compose_session(project: str, files: list, extra_env: dict[str, str], workdir, measurements: dict):
    """Brings up every service of `files` that can start here, in its own compose project
    with fresh secrets, every port on loopback where Docker picks the host port; yields
    the Stack and tears it down with its volumes (E2E_KEEP=1 leaves it running). The
    time to healthy, the stand-ins and each container's peak memory go to `measurements`."""
    shared = any(Path(f).name == compose_info.AUTH_FILE for f in files)
    env = generated_env(project, extra_env, workdir, shared)
    plan = plan_stack(tuple(files), compose_plan.active_profiles(env))
    env_file = workdir / "session.env"
    # The user's places must exist as mountpoints (make up creates them; a fresh clone has
    # none): the session mounts empty ones over them.
    places.create(REPO)
    overlay = workdir / "session.yml"
    overlay.write_text(compose_info.session_overlay(*files, host=HOST, places=workdir / "places"))
    # --env-file replaces the user's .env (their secrets and overrides stay out of the run);
    # the same values go into os.environ, which compose gives precedence anyway.
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    measurements.update(project=project, settings=envfile.masked(extra_env))  # printed, kept in build/
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        compose = DockerCompose(REPO, compose_file_name=[str(f) for f in [*files, overlay]],
                                env_file=str(env_file), wait=True)
        s = Stack(compose.docker_compose_command(), plan, env)
        s.files = list(files)
        s.places = workdir / "places"  # the empty places of the user's, mounted over theirs
        # How this machine reaches its published ports: HTTPS and the login when shared.
        s.login = compose_info.Login(env["STACK_AUTH_USER"], env["STACK_AUTH_PASSWORD"],
                                     workdir / "secrets" / "auth" / "ca.pem") if shared else compose_info.Login()
        clients.use_login(s.login)
        s.down()  # leftovers of an aborted run
        if plan.build:  # images compose would build (no *_IMAGE given, nothing to pull)
            t0 = time.monotonic()
            built = s.compose("build", *plan.build, check=False, timeout=1800)
            measurements["build_s"] = round(time.monotonic() - t0, 1)
            if built.returncode != 0:
                why = (built.stderr.strip().splitlines() or ["?"])[-1][:300]
                for svc in plan.build:
                    plan.drop(svc, f"`docker compose build {svc}` failed: {why}")
        measurements.update(started=plan.start, not_started=plan.missing, one_shot=sorted(plan.one_shot),
                            stand_ins=stand_ins(plan),
                            images={svc: image(var) for svc, var in plan.image_vars.items() if var and svc in plan.start})
        if not plan.start:
            pytest.skip(f"{project}: no service can start here: "
                        + "; ".join(f"{k}: {v}" for k, v in plan.missing.items()))
        # --no-deps: compose otherwise pulls every depends_on target, `required: false` ones
        # included (loki, jaeger), and fails when one cannot be pulled. All services that
        # can start are listed, so their depends_on conditions among each other still apply.
        compose.services = ["--no-deps", *plan.start]
        sampler = MemorySampler(project)
        sampler.start()
        t0 = time.monotonic()
        try:
            try:
                compose.start()  # `up --wait <services>`: returns once all are healthy/running
            except subprocess.CalledProcessError as exc:
                ps = s.compose("ps", "-a", check=False).stdout
                pytest.fail(f"`docker compose up --wait {' '.join(compose.services)}` failed:\n"
                            f"{(exc.stderr or b'').decode(errors='replace')[-3000:]}\n{ps}\n"
                            f"{s.logs(tail=30)[-6000:]}", pytrace=False)
            measurements["compose_up_to_healthy_s"] = round(time.monotonic() - t0, 1)
            s.up_at = time.time()
            measurements["compose_files"] = [f.name for f in files]
            s.refresh_endpoints()
            yield s
        finally:
            sampler.stop()
            measurements["peak_memory"] = sampler.report()
            measurements["memory_samples"] = sampler.samples
            if os.environ.get("E2E_KEEP"):
                print(f"\nE2E_KEEP set: project {project} left running (env file {env_file})")
            else:
                s.down()


@contextlib.contextmanager
def drill_stack(project: str, needed: tuple, workdir, measurements: dict):
    """A fresh stack of its own in the drill profile, its small collector queues included
    (as `make drill-up`), with a drills Target on it (the training-ground and history tiers)."""
    from drills.target import Target
    from scripts.profiles import DRILL_QUEUE
    from tests.tooling import require_image

    for var in needed:
        require_image(var)
    with compose_session(project, [REPO / "docker-compose.yml"], {**drill_profile(), **DRILL_QUEUE}, workdir,
                         measurements) as s:
        s.target = Target(s.compose_cmd, token=s.env["DEMO_ADMIN_TOKEN"], login=s.login)
        yield s
