"""What the catalogue accepts: CKAN's dicts as clients send them, checked with Pydantic.

Clients send CKAN's shapes loosely (tags as ``[{"name": ...}]`` or ``tag_string``, booleans
as ``"true"`` from forms, numbers as strings from multipart); the models accept those and
ignore keys they do not know (CKAN does, and ``package_show``'s output goes back into
``package_update`` unchanged). Every failure becomes CKAN's per-field messages
(``ValidationFailed``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from shapely.geometry import shape

from smartcity.opendata.catalogue.reference import FREQUENCIES
from smartcity.opendata.errors import ValidationFailed

NAME_RE = re.compile(r"^[a-z0-9_-]{2,100}$")
NAME_MESSAGE = (
    "Must be 2 to 100 characters, purely lowercase alphanumeric (ascii) characters "
    "and these symbols: -_"
)
TAG_RE = re.compile(r"^[\w \-.]{1,100}$")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
CAPACITIES = ("admin", "editor", "member")
RESOURCE_KINDS = ("upload", "link", "api", "hub-query", "live")
HUB_PREFIX = "/ngsi-ld/v1/"
MAX_TEXT = 100_000

Model = TypeVar("Model", bound=BaseModel)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


def _json_text(value: Any) -> Any:
    """Multipart forms send objects as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(NAME_MESSAGE)
    return value


class Ref(_In):
    """A reference to an organisation, group or tag by ``id`` or ``name``."""

    id: str | None = None
    name: str | None = None

    @property
    def key(self) -> str | None:
        return self.name or self.id


class TagIn(_In):
    name: str = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _tag(cls, value: str) -> str:
        value = value.strip()
        if not TAG_RE.match(value):
            raise ValueError(
                "Tag must be 1 to 100 characters: letters, digits, spaces and these symbols: -_."
            )
        return value


class ExtraIn(_In):
    key: str = Field(min_length=1, max_length=200)
    value: Any = None

    @field_validator("value")
    @classmethod
    def _text(cls, value: Any) -> str:
        return value if isinstance(value, str) else orjson.dumps(value).decode()


class FieldIn(_In):
    """One field of the data dictionary."""

    name: str = Field(min_length=1, max_length=200)
    type: str = Field(default="text", max_length=50)
    unit: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    description_translated: dict[str, str | None] | None = None


class ResourceIn(_In):
    id: str | None = Field(default=None, pattern=ID_RE.pattern)
    package_id: str | None = None
    url: str | None = Field(default=None, max_length=4000)
    url_type: str | None = None
    kind: Literal["upload", "link", "api", "hub-query", "live"] | None = None
    name: str | None = Field(default=None, max_length=1000)
    name_translated: dict[str, str | None] | None = None
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    description_translated: dict[str, str | None] | None = None
    format: str | None = Field(default=None, max_length=100)
    mimetype: str | None = Field(default=None, max_length=255)
    size: int | None = Field(default=None, ge=0)
    hash: str | None = Field(default=None, max_length=255)
    language: list[str] | None = None
    last_modified: str | None = None
    created: str | None = None
    metadata_modified: str | None = None

    _objects = field_validator("name_translated", "description_translated", mode="before")(
        classmethod(lambda cls, v: _json_text(v))
    )

    @field_validator("size", mode="before")
    @classmethod
    def _blank_size(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("language", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> Any:
        value = _json_text(value)
        return (
            [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        )


class DatasetIn(_In):
    id: str | None = Field(default=None, pattern=ID_RE.pattern)
    name: str
    title: str | None = Field(default=None, max_length=500)
    title_translated: dict[str, str | None] | None = None
    notes: str | None = Field(default=None, max_length=MAX_TEXT)
    notes_translated: dict[str, str | None] | None = None
    owner_org: str | None = None
    private: bool = False
    state: Literal["active", "draft"] | None = None
    license_id: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=4000)
    version: str | None = Field(default=None, max_length=100)
    author: str | None = Field(default=None, max_length=255)
    author_email: str | None = Field(default=None, max_length=255)
    maintainer: str | None = Field(default=None, max_length=255)
    maintainer_email: str | None = Field(default=None, max_length=255)
    frequency: str | None = None
    temporal_start: str | None = None
    temporal_end: str | None = None
    spatial: dict[str, Any] | None = None
    spatial_label: str | None = Field(default=None, max_length=500)
    spatial_label_translated: dict[str, str | None] | None = None
    data_dictionary: list[FieldIn] | None = None
    tags: list[TagIn] | None = None
    tag_string: str | None = None
    groups: list[Ref] | None = None
    extras: list[ExtraIn] | None = None
    resources: list[ResourceIn] | None = None
    metadata_created: str | None = None
    metadata_modified: str | None = None
    creator_user_id: str | None = Field(default=None, max_length=255)

    _objects = field_validator(
        "title_translated",
        "notes_translated",
        "spatial_label_translated",
        "data_dictionary",
        "tags",
        "groups",
        "extras",
        "resources",
        mode="before",
    )(classmethod(lambda cls, v: _json_text(v)))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        folded = value.strip().lower()
        if folded not in FREQUENCIES:
            raise ValueError(f"unknown frequency {value!r}; use one of {', '.join(FREQUENCIES)}")
        return folded

    @field_validator("temporal_start", "temporal_end")
    @classmethod
    def _temporal(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        try:
            if len(value) <= 10:
                dt.date.fromisoformat(value)
            else:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 date (2024-01-31) or date and time") from None
        return value

    @field_validator("spatial", mode="before")
    @classmethod
    def _spatial(cls, value: Any) -> Any:
        value = _json_text(value)
        if value in (None, ""):
            return None
        if not isinstance(value, dict):
            raise ValueError("must be a GeoJSON geometry object")
        try:
            geometry = shape(value)
        except Exception as exc:  # shapely raises several types for bad GeoJSON
            raise ValueError(f"not a usable GeoJSON geometry: {exc}") from None
        if geometry.is_empty:
            raise ValueError("the GeoJSON geometry is empty")
        return value

    @field_validator("private", mode="before")
    @classmethod
    def _private(cls, value: Any) -> Any:
        return False if value in (None, "") else value


class GroupIn(_In):
    """An organisation or a group."""

    id: str | None = Field(default=None, pattern=ID_RE.pattern)
    name: str
    title: str | None = Field(default=None, max_length=500)
    title_translated: dict[str, str | None] | None = None
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    description_translated: dict[str, str | None] | None = None
    image_url: str | None = Field(default=None, max_length=4000)
    users: list[MemberIn] | None = None
    created: str | None = None

    _objects = field_validator(
        "title_translated", "description_translated", "users", mode="before"
    )(classmethod(lambda cls, v: _json_text(v)))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


class MemberIn(_In):
    name: str = Field(min_length=1, max_length=255)
    capacity: Literal["admin", "editor", "member"] = "member"


GroupIn.model_rebuild()


def parse(model: type[Model], data: dict[str, Any]) -> Model:
    """``data`` as ``model``, or ``ValidationFailed`` with CKAN's per-field messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        field = loc[0] if loc else "__all__"
        where = " ".join(
            f"#{int(p) + 1}" if p.isdigit() else p for p in loc[1:]
        )  # resources #2 url
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "Missing value"
        errors.setdefault(field, []).append(f"{where}: {message}" if where else message)
    return errors
