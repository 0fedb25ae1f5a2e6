"""Fixtures of the hostile-input suite (helpers are in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.hostile.harness import Server, serve


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[Server]:
    """One server per backend, shared by a module's tests."""
    with serve(database_url) as running:
        yield running
