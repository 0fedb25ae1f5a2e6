"""Which strings the platform accepts: every string it stores must be storable on both backends,
and every id must be carriable in a URL and an HTTP header.

* U+0000 (NUL) is refused everywhere, in ids and in values: PostgreSQL can hold it neither in
  ``text`` nor in a ``jsonb`` string, while SQLite stores it, so refusing it at the edge keeps
  the two backends alike (and a value in the hub is the same value in a notification).
* Ids and names also refuse the other control characters (U+0001-U+001F, U+007F-U+009F) and
  lone surrogates: an id travels in ``Location`` headers, paths and MQTT topics.

JSON bodies decoded with orjson can hold no lone surrogate (orjson refuses them), and JSON can
only spell U+0000 as the escape ``\\u0000``: ``may_hold_nul`` is the cheap test on the raw body,
``refuse_nul`` the exact one on the decoded value.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from smartcity.hub.errors import BadRequestData

NUL = "\x00"
# What no backend can store: U+0000 and the surrogate code points (not valid UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# C0 controls, DEL, C1 controls and the surrogate code points.
_NOT_IN_IDS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
NUL_HINT = "U+0000 (NUL) cannot be stored; remove it (it is usually a client bug)"


def may_hold_nul(raw: bytes | bytearray) -> bool:
    """False when a JSON text certainly holds no U+0000 (the escape is its only spelling)."""
    return b"\\u0000" in raw


def nul_location(value: Any, where: str = "") -> str | None:
    """Where in a decoded JSON value (keys included) a string holds U+0000 (or a lone
    surrogate, which Python's own json module lets through), or None."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return path or "a string"
        elif isinstance(item, dict):
            for key, member in item.items():
                if _UNSTORABLE.search(key):
                    return f"a member name of {path or 'the body'}"
                stack.append((member, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            stack.extend((member, f"{path}[{i}]") for i, member in enumerate(item))
    return None


def refuse_nul(value: Any, what: str = "the body") -> None:
    """BadRequestData if any string in ``value`` holds U+0000."""
    found = nul_location(value)
    if found is not None:
        raise BadRequestData(f"{what}: {found} holds {NUL_HINT}")


def refuse_unstorable(value: Any, what: str) -> None:
    """BadRequestData if any string in ``value`` (keys included) holds U+0000 or a lone
    surrogate: the check of the hub's write pipeline, for writers that never passed the HTTP
    edge (connectors, the simulator, scripts). One orjson encoding (C speed) answers for
    almost every value; only a value whose encoding may hold the escape, or cannot be encoded
    (lone surrogates), is walked in Python."""
    try:
        raw = orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        raw = b"\\u0000"  # cannot tell cheaply: walk it
    if may_hold_nul(raw):
        found = nul_location(value)
        if found is not None:
            raise BadRequestData(f"{what}: {found} holds {NUL_HINT}")


def refuse_nul_in_text(text: str, what: str) -> None:
    if NUL in text:
        raise BadRequestData(f"{what} holds {NUL_HINT}")


def id_problem(text: str) -> str | None:
    """Why ``text`` cannot be an id or a name (a control character or a lone surrogate)."""
    found = _NOT_IN_IDS.search(text)
    if found is None:
        return None
    return (
        f"contains the character U+{ord(found.group()):04X}; ids and names may not hold control "
        "characters or lone surrogates"
    )
