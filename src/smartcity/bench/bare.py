"""The ceiling for `bench hub`'s single-entity figures: a bare ASGI app, served by the same
uvicorn with the same workers, that answers every request at once — a GET with a fixed
NGSI-LD entity (the size of the benchmark's entities), anything else, once its body is read,
with 204. Whatever the hub does beyond this is the hub's own cost; the hub's figures are
reported as ratios to it, measured in the same run."""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope, Send

BODY = orjson.dumps(
    {
        "id": "urn:ngsi-ld:Bench:1",
        "type": "Bench",
        "speed": {"type": "Property", "value": 64, "observedAt": "2026-11-26T08:00:00Z"},
        "name": {"type": "Property", "value": "detector 1"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [114.1, 22.3]},
        },
    }
)
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as the hub must
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": BODY})
    else:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
