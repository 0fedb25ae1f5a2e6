"""What a device registration looks like on the wire (validated with Pydantic)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smartcity.hub.api.negotiation import TENANT_PATTERN
from smartcity.hub.text import NUL_HINT, id_problem, nul_location

# Device ids appear in URLs, MQTT topics and entity ids: no '/', '+', '#' or spaces.
# Matched with fullmatch: '$' would let a trailing newline through (into a Location header).
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# Payload keys and attribute names: short, and free of the q language's characters.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_KEYS = frozenset({"t", "key", "readings"})


class AttributeMap(BaseModel):
    """How one key of the device's payload becomes an NGSI-LD attribute."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="NGSI-LD attribute name, e.g. temperature")
    unitCode: str | None = Field(
        default=None, max_length=8, description="UN/CEFACT unit code, e.g. CEL, P1, KMH"
    )
    scale: float | None = Field(default=None, description="value = raw * scale + offset")
    offset: float | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("must be a plain attribute name such as temperature")
        return value


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Device id, e.g. aq-tai-po-01 (letters, digits, _ . : -)")
    name: str | None = Field(default=None, max_length=255)
    tenant: str = Field(default="", pattern=TENANT_PATTERN)
    entity_id: str = Field(description="Entity the device feeds, e.g. urn:ngsi-ld:Foo:1")
    entity_type: str = Field(description="Its type, e.g. AirQualityObserved")
    context: str | None = Field(
        default=None,
        max_length=2048,
        description="@context URL for entity type and attribute names (default: core only)",
    )
    attributes: dict[str, AttributeMap] = Field(
        description='payload key -> attribute, e.g. {"pm25": {"name": "pm25"}}'
    )
    interval_s: int = Field(
        default=300, ge=1, le=7 * 86400, description="Expected reporting interval (seconds)"
    )
    mqtt_topic: str | None = Field(
        default=None, max_length=1024, description="Default: from the configured topic pattern"
    )
    mqtt_auth: Literal["secret", "broker"] = Field(
        default="secret",
        description="secret: MQTT payloads carry the device secret in 'key'; broker: the "
        "broker's per-device ACL vouches for the topic",
    )

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # FastAPI decodes this body with Python's json, which lets lone surrogates through.
        found = nul_location(data)
        if found is not None:
            raise ValueError(f"{found} holds {NUL_HINT}")
        return data

    @field_validator("entity_id", "entity_type")
    @classmethod
    def _id_like(cls, value: str) -> str:
        problem = id_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not DEVICE_ID.fullmatch(value):
            raise ValueError("must be 1-128 letters, digits, '_', '.', ':' or '-'")
        return value

    @field_validator("attributes")
    @classmethod
    def _attrs(cls, value: dict[str, AttributeMap]) -> dict[str, AttributeMap]:
        if not value:
            raise ValueError("a device must map at least one payload key")
        if len(value) > 64:
            raise ValueError("at most 64 payload keys")
        for key in value:
            if not NAME.fullmatch(key) or key in RESERVED_KEYS:
                raise ValueError(f"payload key {key!r} is not allowed (reserved or not a name)")
        names = [a.name for a in value.values()]
        if len(set(names)) != len(names):
            raise ValueError("two payload keys map to the same attribute")
        return value

    @field_validator("mqtt_topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and (not value or "+" in value or "#" in value or "\0" in value):
            raise ValueError("must be a concrete MQTT topic (no wildcards)")
        return value


class DeviceOut(BaseModel):
    id: str
    name: str
    tenant: str
    entity_id: str
    entity_type: str
    context: str | None
    attributes: dict[str, Any]
    interval_s: int
    mqtt_topic: str
    mqtt_auth: str
    status: str
    created_at: str
    last_seen: str | None
    revoked_at: str | None
    secret: str | None = Field(default=None, description="Only in the creation response")
