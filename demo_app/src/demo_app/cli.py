"""`demo-app ROLE`: run one of the demo roles under uvicorn."""

from __future__ import annotations

import argparse
import sys

from .config import ROLES, ConfigError, Settings
from .faults import FaultError


def build(role: str):
    settings = Settings.from_env(role)
    from .telemetry import Telemetry, configure_logging

    telemetry = Telemetry(role)
    configure_logging(telemetry, settings.log_level)
    if role == "shop":
        from .shop import create_app

        app = create_app(settings, telemetry)
    elif role == "inventory":
        from .inventory import create_app

        app = create_app(settings, telemetry)
    elif role == "loadgen":
        from .loadgen import create_app

        app = create_app(telemetry)
    else:
        from .alertsink import create_app

        app = create_app(telemetry)
    return settings, app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo-app", description=__doc__)
    parser.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)
    try:
        settings, app = build(args.role)
    except (ConfigError, FaultError) as exc:
        print(f"demo-app {args.role}: configuration error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    # log_config=None: keep our JSON logging; uvicorn's loggers propagate to root.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
