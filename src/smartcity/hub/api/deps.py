"""Per-request plumbing: the hub's objects on app.state, authentication, and common params."""

from __future__ import annotations

import re
from typing import TypeVar

from fastapi import Request

from smartcity.hub.errors import BadRequestData, Forbidden, InvalidRequest, Unauthorized
from smartcity.hub.runtime import Hub
from smartcity.security.keys import ApiKey

T = TypeVar("T")


def hub(request: Request) -> Hub:
    """The app's hub (``smartcity.hub.runtime.build_hub``), for endpoints of every feature."""
    found: Hub = request.app.state.hub
    return found


def require(request: Request, tenant: str, scope: str) -> None:
    """Check the bearer key for a write (always) or a read (on private tenants)."""
    h = hub(request)
    if not h.settings.auth_required:
        return
    if scope == "read" and not (
        "*" in h.settings.private_read_tenants or tenant in h.settings.private_read_tenants
    ):
        return
    key = _key(request, scope)
    if not key.allows(tenant, scope):
        raise Forbidden(
            f"the API key '{key.name}' may not {scope} tenant {tenant or '(default)'!r}"
        )


def require_every_tenant(request: Request, what: str) -> None:
    """Check for a write key valid in every tenant (``keys create`` without ``--tenant``):
    what all tenants share is changed only with such a key."""
    if not hub(request).settings.auth_required:
        return
    key = _key(request, "write")
    if not key.allows("*", "write"):
        raise Forbidden(
            f"{what} is shared by every tenant: only a write key for all tenants may change it; "
            f"the API key '{key.name}' is for {', '.join(repr(t) for t in key.tenants)}"
        )


def _key(request: Request, scope: str) -> ApiKey:
    """The request's valid API key (401 when there is none)."""
    h = hub(request)
    header = request.headers.get("authorization", "")
    if not header:
        raise Unauthorized(
            f"this {'write' if scope == 'write' else 'read'} needs an API key: send "
            "'Authorization: Bearer <key>' (create one with `smartcity keys create`)"
        )
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    key = h.keys.verify(token.strip())
    if key is None:
        raise Unauthorized("the API key is unknown or revoked")
    return key


def parse_options(options: str | None, allowed: set[str]) -> set[str]:
    """The ``options`` values; one the operation does not support is InvalidRequest (clause
    5.5.2: "values of the options parameter that are not supported by the operation")."""
    if not options:
        return set()
    found = {o.strip() for o in options.split(",") if o.strip()}
    unknown = found - allowed
    if unknown:
        raise InvalidRequest(
            f"options {', '.join(sorted(unknown))} not understood here; allowed: "
            + ", ".join(sorted(allowed))
        )
    return found


# One BCP 47 language tag (RFC 5646's shape, not its registry), or JSON-LD's "@none".
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|@none")


def language_tag(value: str) -> str:
    """The ``lang`` of a write: the one language a simplified LanguageProperty text is in."""
    if not _LANGUAGE_TAG.fullmatch(value):
        raise BadRequestData(
            f"lang {value!r} is not a language tag; give one, such as en, zh-Hant or zh-Hans"
        )
    return value


def int_param(value: str | None, name: str, default: int, *, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequestData(f"{name} must be a whole number, got {value!r}") from None
    if number < low:
        raise BadRequestData(f"{name} must be at least {low}, got {number}")
    if number > high:
        from smartcity.hub.errors import TooManyResults

        raise TooManyResults(f"{name} must be at most {high}, got {number}")
    return number


def bool_param(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1", ""):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequestData(f"{name} must be true or false, got {value!r}")
