"""`python3 -m demo_app.healthcheck`: the image's HEALTHCHECK (slim images have no curl).

Probes /healthz on DEMO_PORT, or on the role defaults when unset (one role listens
per container, so any answering port is this container's service)."""

import os
import sys
import urllib.request

from .settings import DEFAULT_PORTS


def main() -> int:
    port = os.environ.get("DEMO_PORT", "").strip()
    ports = [port] if port else [str(p) for p in DEFAULT_PORTS.values()]
    for p in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=3) as resp:
                if resp.status == 200:
                    return 0
        except OSError:
            continue
    print(f"no /healthz answered on port(s) {', '.join(ports)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
