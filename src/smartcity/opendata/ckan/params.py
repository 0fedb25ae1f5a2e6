"""Reading an action's parameters as CKAN does: strings from a query string or a form,
typed values from JSON; a bad value is a Validation Error naming the parameter."""

from __future__ import annotations

from typing import Any

import orjson

from smartcity.opendata.errors import ValidationFailed


def text(data: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, list):
        value = value[0] if value else default
    return str(value)


def required(data: dict[str, Any], name: str, *alternatives: str) -> str:
    for key in (name, *alternatives):
        value = text(data, key)
        if value:
            return value
    raise ValidationFailed.one(name, "Missing value")


def boolean(data: dict[str, Any], name: str, default: bool = False) -> bool:
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    folded = str(value).strip().lower()
    if folded in ("true", "1", "yes", "on"):
        return True
    if folded in ("false", "0", "no", "off"):
        return False
    raise ValidationFailed.one(name, f"must be true or false, not {value!r}")


def integer(
    data: dict[str, Any], name: str, default: int | None, *, low: int = 0, high: int | None = None
) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed.one(name, f"must be a whole number, not {value!r}") from None
    if number < low:
        raise ValidationFailed.one(name, f"must be at least {low}")
    if high is not None and number > high:
        raise ValidationFailed.one(name, f"must be at most {high}")
    return number


def string_list(data: dict[str, Any], name: str) -> list[str]:
    """A list given as a JSON list, a JSON text of one, repeated parameters or one string."""
    value = data.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = orjson.loads(stripped)
            except orjson.JSONDecodeError:
                raise ValidationFailed.one(name, "is not a valid JSON list") from None
        else:
            return [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ValidationFailed.one(name, "must be a list of strings")
    return [str(v) for v in value]
