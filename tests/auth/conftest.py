"""The auth tier (`make test-all`): the default stack as `make up` starts it shared with a
team (STACK_AUTH on: docker-compose.auth.yml), on a stack of its own (project obs-auth).
The fixtures are tests/e2e's; the stack's published ports serve TLS and ask for the login,
and the e2e clients speak HTTPS with it (tests/e2e/clients.py use_login)."""
from __future__ import annotations

import sys

import pytest

from tests.e2e.conftest import _needed_services, default_stack, warm  # noqa: F401 - fixtures of this package too


@pytest.fixture(scope="package")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from default_stack(request, tmp_path_factory, shared=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The e2e tests test_e2e_shared.py imports keep the marks of the module they come from
    (a module's pytestmark stays with its module): its signal, and the services it needs,
    which skip it where an image is missing (tests/e2e/conftest.py)."""
    for item in items:
        fn = getattr(item, "function", None)
        if fn is None or not fn.__module__.startswith("tests.e2e."):
            continue
        for mark in getattr(sys.modules[fn.__module__], "pytestmark", []):
            if mark.name in ("signal", "services") and not item.get_closest_marker(mark.name):
                item.add_marker(mark)
