"""The days tier (`make test-all`): what living with the stack for days asks of it, on a
stack of its own (the default stack, as tests/e2e starts it): every store keeps its data
across a restart and `make down`/`make up`, the demo keeps serving without the collector,
Prometheus keeps its data in a new container, and `make up` tells the truth about
readiness. The fixtures are tests/e2e's: the same stack, started once for this tier."""
from __future__ import annotations

from tests.e2e.conftest import _needed_services, stack, warm  # noqa: F401 - fixtures of this package too
