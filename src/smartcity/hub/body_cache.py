"""Rendered response bodies of retrieve-by-id, kept so a repeated read of an unchanged entity
skips parsing and rendering (hub/api/entities.py).

Correct by construction rather than by invalidation: each entry is keyed by the stored
document's exact text as just read from the database, together with everything else the body
depends on (tenant, entity id, the request's options). A write changes the text (at least its
``modifiedAt``), so a read after it misses and renders anew; there is nothing to invalidate,
across worker processes either, and no entry outlives its document's text. Memory is bounded:
least recently used entries go once the bytes held pass ``max_bytes``.

Used from the event loop only (one thread), so it needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

# An entry's bookkeeping beyond its texts: the key tuple, the entry, the dict's slot.
_OVERHEAD = 200


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response as sent: its body and its headers (raw, as Starlette sends them)."""

    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...]
    # Objects the key names by identity (an @context): kept alive so that the id cannot be
    # reused by another object while the entry exists.
    pinned: Any = None


class BodyCache:
    """An LRU map from (tenant, entity id, document text, variant) to a ``Rendered``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str, str, Hashable], Rendered] = OrderedDict()

    def get(self, tenant: str, entity_id: str, text: str, variant: Hashable) -> Rendered | None:
        key = (tenant, entity_id, text, variant)
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(
        self, tenant: str, entity_id: str, text: str, variant: Hashable, rendered: Rendered
    ) -> None:
        size = _size(entity_id, text, rendered)
        if size > self.max_bytes:
            return
        key = (tenant, entity_id, text, variant)
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= _size(entity_id, text, old)
        self._entries[key] = rendered
        self.bytes += size
        while self.bytes > self.max_bytes:
            (_, eid, old_text, _), dropped = self._entries.popitem(last=False)
            self.bytes -= _size(eid, old_text, dropped)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def _size(entity_id: str, text: str, rendered: Rendered) -> int:
    """The bytes an entry holds, near enough (a str of non-ASCII text takes up to 4 a char)."""
    headers = sum(len(k) + len(v) for k, v in rendered.raw_headers)
    chars = len(entity_id) + len(text)
    if not (entity_id.isascii() and text.isascii()):
        chars *= 4
    return chars + len(rendered.body) + headers + _OVERHEAD
