"""Pytest fixtures for the loopback stand-in API (:mod:`standin_api`).

Why a separate module: ``tests/conftest.py`` builds sample databases through the store, which sync tests
do not need; a test module that wants the stand-in loads them as a plugin::

    pytest_plugins = ["conftest_standin"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from standin_api import StandinAPI, StandinRegistry, running_standin


@pytest.fixture()
def standin() -> Iterator[StandinAPI]:
    """A started stand-in serving the seed records; ``standin.registry`` changes data and injects faults."""
    yield from running_standin()


@pytest.fixture()
def standin_registry(standin: StandinAPI) -> StandinRegistry:
    """The data and fault controls of the running :func:`standin`."""
    return standin.registry
