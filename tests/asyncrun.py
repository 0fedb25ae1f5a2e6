"""``run(coro)``: asyncio.run for tests, in a thread of its own.

A session-scoped Playwright browser (sync API, tests/browser/conftest.py) keeps an event loop
running in the main thread of whichever xdist worker it started in, and ``asyncio.run`` refuses
to start inside a running loop. Which tests share that worker changes with every run, so a test
that calls ``asyncio.run`` directly passes alone and fails in CI. ruff bans ``asyncio.run`` under
tests/ (pyproject.toml); use this instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh event loop in a new thread; return or raise its
    outcome here."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))  # noqa: TID251 (this is the one sanctioned place)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="tests.asyncrun")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
