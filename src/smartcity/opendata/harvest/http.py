"""Reading a source over HTTP: through the platform's SSRF guard (``hub/outbound.py``), with a
timeout and a byte limit, and errors that say what went wrong and with which URL."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smartcity.hub.outbound import TargetGuard, http_client, refusal_in
from smartcity.opendata.harvest.model import HarvestError

MAX_BYTES = 50 * 1024 * 1024  # one answer of a source


def client(guard: TargetGuard) -> httpx.Client:
    return http_client(
        guard,
        timeout=httpx.Timeout(60.0, connect=10.0),
        follow_redirects=True,
        headers={"User-Agent": "smartcity-opendata-harvest", "Accept": "application/json"},
    )


def get_bytes(
    session: httpx.Client, url: str, params: dict[str, Any] | None = None, accept: str = ""
) -> tuple[bytes, str]:
    """The body and media type of a GET, or a HarvestError saying why not."""
    headers = {"Accept": accept} if accept else {}
    try:
        with session.stream("GET", url, params=params, headers=headers) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise HarvestError(
                        f"{response.url}: the answer is larger than {MAX_BYTES} bytes"
                    )
            if response.status_code != 200:
                said = bytes(body[:300]).decode(errors="replace")
                raise HarvestError(f"{response.url} answered {response.status_code}: {said}")
            media = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return bytes(body), media
    except httpx.HTTPError as exc:
        refused = refusal_in(exc)
        if refused is not None:
            raise HarvestError(f"{url}: refused by the SSRF guard: {refused}") from None
        raise HarvestError(f"{url}: {type(exc).__name__}: {exc or 'no answer'}") from None


def get_json(session: httpx.Client, url: str, params: dict[str, Any] | None = None) -> Any:
    body, _ = get_bytes(session, url, params)
    try:
        return json.loads(body)
    except ValueError:
        raise HarvestError(f"{url} did not answer JSON: is it a CKAN site?") from None
