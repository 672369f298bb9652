"""`demo-app ROLE`: run one of the demo roles under uvicorn."""

from __future__ import annotations

import argparse
import sys

from . import settings as settings_module
from .settings import ROLES, ConfigError


def build(role: str):
    settings = settings_module.load(role)
    from .telemetry import Telemetry, configure_logging

    telemetry = Telemetry(role, otlp_logs_sampled_only=settings.otlp_logs_sampled_only, tuned=settings.tuned)
    configure_logging(telemetry, settings.log_level)
    if role == "shop":
        from .shop import create_app
    elif role == "inventory":
        from .inventory import create_app
    elif role == "loadgen":
        from .loadgen import create_app
    else:
        from .alertsink import create_app
    return settings, create_app(settings, telemetry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo-app", description=__doc__)
    parser.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)
    try:
        settings, app = build(args.role)
    except ConfigError as exc:
        print(f"demo-app {args.role}: configuration error: {exc}", file=sys.stderr)
        return 2
    import asyncio

    from .published import servers

    if settings.tuned:
        from . import tuning

        tuning.gc()
    # log_config=None (published.servers): keep our JSON logging; uvicorn's loggers
    # propagate to root. The published listener, where set, serves beside the plain one.
    async def serve() -> None:
        await asyncio.gather(*(server.serve() for server in servers(app, settings)))

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
