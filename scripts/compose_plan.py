"""Which services of a compose project can start on this machine: their images are
local, pullable or buildable, and so are the services they need. The e2e tiers, the soak
and the exercises' live stage start what can start and name what cannot.

Needs PyYAML (the project's venv).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from scripts import compose_info
from scripts.validate import REPO, image, image_available, required_images

COMPOSE_FILE = REPO / "docker-compose.yml"
_IMAGE_REF = re.compile(r"\$\{(\w+_IMAGE)(?::?[-?][^}]*)?\}")  # ${X_IMAGE:-pin}, ${X_IMAGE:?why}


@dataclass
class Plan:
    """The compose services of the default stack: those we can start here (some after a
    local `docker compose build`), and those we cannot (service -> reason naming the image)."""
    image_vars: dict[str, str | None]
    missing: dict[str, str]
    depends: dict[str, list[str]]
    build: list[str] = field(default_factory=list)
    one_shot: set[str] = field(default_factory=set)  # restart: "no" helpers that exit

    @property
    def start(self) -> list[str]:
        return [name for name in self.image_vars if name not in self.missing]

    def drop(self, service: str, reason: str) -> None:
        """Mark a service as unable to start, and with it every service needing it."""
        self.missing[service] = reason
        changed = True
        while changed:
            changed = False
            for name, deps in self.depends.items():
                if name in self.missing:
                    continue
                for dep in deps:
                    if dep in self.missing:
                        self.missing[name] = f"depends on {dep}, which cannot start: {self.missing[dep]}"
                        changed = True
                        break


def _depends_on(svc: dict) -> list[str]:
    deps = svc.get("depends_on") or []
    if isinstance(deps, dict):  # long form; `required: false` deps do not block startup
        return [name for name, opts in deps.items() if (opts or {}).get("required", True)]
    return list(deps)


def merged_services(files: tuple) -> dict[str, dict]:
    """The services of several compose files, later files' keys over earlier ones', a
    service that `extends` another starting from it (enough to plan which can start)."""
    services: dict[str, dict] = {}
    for f in files:
        for name, svc in compose_info.load_compose_yaml(f)["services"].items():
            base = services.get(svc.get("extends", {}).get("service"), {}) if "extends" in svc else {}
            services[name] = {**base, **services.get(name, {}), **svc}
    return services


def active_profiles(env: dict[str, str]) -> set[str]:
    """The compose profiles COMPOSE_PROFILES switches on (comma-separated; `*`: all)."""
    return {p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()}


def plan_stack(files: tuple = (COMPOSE_FILE,), profiles: set[str] | frozenset = frozenset()) -> Plan:
    """Every service of the active profiles (those without a profile, and those whose
    profile is in `profiles`) whose image is local, pullable, or buildable from the
    service's `build:` context, and whose required dependencies can start too (compose
    would otherwise try to start them)."""
    services = merged_services(files)
    plan = Plan({}, {}, {})
    unavailable = {}
    for name, svc in services.items():
        if svc.get("profiles") and "*" not in profiles and not set(svc["profiles"]) & set(profiles):
            continue  # not part of what compose starts with these profiles
        m = _IMAGE_REF.search(str(svc.get("image", "")))
        var = m.group(1) if m else None
        plan.image_vars[name] = var
        plan.depends[name] = _depends_on(svc)
        if svc.get("restart") == "no":
            plan.one_shot.add(name)
        ref = image(var) if var else svc.get("image")
        if ref and image_available(ref):
            continue
        if svc.get("build"):
            plan.build.append(name)  # compose would build it; the session does it first
        else:
            unavailable[name] = f"image {ref} ({var}) is neither local nor pullable"
    for name, reason in unavailable.items():
        plan.drop(name, reason)
    return plan


def stand_ins(plan: Plan) -> dict[str, str]:
    """Started services whose image is a twin of another version than the pinned one
    (label io.twins.stands-in-for): service -> a note saying which stands in for which."""
    notes = {}
    for name in plan.start:
        var = plan.image_vars.get(name)
        if not var:
            continue
        ref = image(var)
        out = subprocess.run(["docker", "image", "inspect", "-f",
                              '{{index .Config.Labels "io.twins.stands-in-for"}}|'
                              '{{index .Config.Labels "org.opencontainers.image.version"}}', ref],
                             capture_output=True, text=True)
        target, _, version = out.stdout.strip().partition("|")
        if out.returncode == 0 and target not in ("", "<no value>"):
            notes[name] = f"{ref} (version {version}) stands in for {target}"
    return notes


def missing_required(plan: Plan) -> list[str]:
    """Services that cannot start although CI listed their image var as required."""
    req = required_images()
    return [f"{svc}: {why}" for svc, why in plan.missing.items() if plan.image_vars.get(svc) in req]
