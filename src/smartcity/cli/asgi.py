"""The app factory uvicorn imports in each worker (settings come from the environment)."""

from __future__ import annotations

import gc
import os

from fastapi import FastAPI

from smartcity.app import create_app
from smartcity.config import Settings

# Allocations (less deallocations) between two collections of the youngest generation; Python's
# default is 700. See settle_heap.
YOUNG_THRESHOLD = 50_000


def app() -> FastAPI:
    auth = os.environ.get("SMARTCITY_AUTH", "1") != "0"
    built = create_app(Settings.from_env(auth_required=auth))
    settle_heap()
    return built


def settle_heap() -> None:
    """Keep the cyclic garbage collector's full passes out of a served worker's requests.

    A worker holds ~375,000 objects once warm (its modules and app, ~225,000, then what its
    caches keep: compiled statements, contexts, rendered bodies), and hardly any of them are
    ever cyclic garbage (a full pass under load found 0–40). Yet under load Python ran a full
    pass every 6–14 s, each stopping the worker for 0.3–1.4 s on a slow 2-core machine
    (measured with `gc.callbacks`): requests that live 100 ms and more under load outlast the
    young generations and are promoted, which is what triggers full passes. That was the p99
    of `GET /entities?type=...&q=...` (540–800 ms against a p50 of ~125 ms).

    So: what the start built is moved out of the collector's sight (``gc.freeze``; objects
    are still freed by reference counting, only a cycle made at start could no longer be),
    and the youngest generation collects every 50,000 allocations instead of every 700, so a
    request's objects are mostly gone before a collection can promote them. Measured on
    that machine: no full pass at all in a warm worker's 10 s under the same load, the
    query's p99 362–464 ms (the rest is queueing), partial updates' p99 halved, and the CPU
    per request unchanged (docs/performance.md, twelfth session). Not done in ``create_app``:
    tests build hundreds of apps in one process, and frozen apps would never be collected."""
    gc.collect()  # what the start left as garbage is collected, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
