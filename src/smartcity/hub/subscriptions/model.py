"""Subscription payloads in and out: validate into the stored layout, and render back.

The stored document keeps the payload's structure, with every attribute name and entity type
expanded to an IRI by the request's @context, plus a few private members (never rendered)::

    {"id": "urn:ngsi-ld:Subscription:...", "type": "Subscription",
     "entities": [{"type": [["https://.../OffStreetParking"]], "idPattern": "..."}],
     "watchedAttributes": ["https://.../availableSpotNumber"],
     "q": "availableSpotNumber<10", "qNames": {"availableSpotNumber": "https://..."},
     "notification": {"endpoint": {"uri": "http://...", "accept": "application/json"}, ...},
     "context": <the @context of the creating request>, "createdAt": ..., "modifiedAt": ...}

Why ``qNames``: q is matched inside entity write transactions, where resolving an @context
(possibly a network fetch) must not happen. Every name and string literal of q is expanded
once, here, so matching needs no @context at all. Entity types in selectors are stored in the
disjunctive normal form of :mod:`smartcity.hub.types_expr` (a list of all-of lists).

Status counters (timesSent, lastSuccess, ...) live in columns of the ``subscriptions`` table
and are merged in by :func:`render_subscription`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from smartcity.config import Limits
from smartcity.hub.entity import check_name, check_uri
from smartcity.hub.errors import BadRequestData
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.linking import JOIN_MODES, MAX_JOIN_LEVEL, Projection, parse_projection
from smartcity.hub.outbound import TargetGuard
from smartcity.hub.query.qregex import check_pattern
from smartcity.hub.timeutil import iso_from_us, normalise_datetime, parse_datetime_us
from smartcity.hub.types_expr import parse_type_selection

Doc = dict[str, Any]

NULL_URI = "urn:ngsi-ld:null"
TRIGGERS = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
# Clause 5.2.12: "If not present, the default is the combination attributeCreated and
# attributeUpdated".
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
FORMATS = ("normalized", "keyValues", "concise")
JSON = "application/json"
JSONLD = "application/ld+json"
ACCEPTS = (JSON, JSONLD)
SCHEMES = ("http", "https", "mqtt", "mqtts")
MQTT_QOS = "MQTT-QoS"
MQTT_VERSION = "MQTT-Version"
MQTT_VERSIONS = ("mqtt3.1.1", "mqtt5.0")
# Members the broker computes: a client may send them back (e.g. a GET result) and they are
# ignored rather than refused.
READ_ONLY = frozenset({"status", "createdAt", "modifiedAt", "deletedAt", "@context"})
NOTIFICATION_READ_ONLY = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastFailure", "lastSuccess"}
)
# Spec members this broker does not implement: refusing them beats silently ignoring a filter.
UNSUPPORTED = {
    "csf": "csf (context source filter) selects the context sources a subscription is "
    "distributed to; this hub's subscriptions watch its own entities only (queries take csf)",
    "temporalQ": "temporalQ applies to context source registration subscriptions only",
}
# Optional top-level members a PATCH may remove by setting them to urn:ngsi-ld:null.
REMOVABLE = frozenset(
    {
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "notificationTrigger",
        "q",
        "geoQ",
        "scopeQ",
        "expiresAt",
        "throttling",
        "timeInterval",
        "lang",
        "jsonldContext",
        "datasetId",
    }
)
# Inside the stored notification: the braces of pick/omit, {"of": "pick", "nested": {...}}.
LINKED = "linked"
MAX_COOLDOWN_MS = 86_400_000
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_MAX_TEXT = 4096


def new_subscription_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


# -- parsing ---------------------------------------------------------------------------------


class _Parser:
    """Parses members one at a time, so that create and PATCH share every rule."""

    def __init__(self, ctx: ActiveContext, limits: Limits, now_us: int) -> None:
        self.ctx = ctx
        self.limits = limits
        self.now_us = now_us

    # top level -------------------------------------------------------------------------------
    def member(self, doc: Doc, key: str, value: Any) -> None:
        if key in UNSUPPORTED:
            raise BadRequestData(UNSUPPORTED[key])
        parser = _MEMBERS.get(key)
        if parser is None:
            known = ", ".join(sorted([*_MEMBERS, "id", "type"]))
            raise BadRequestData(f"unknown Subscription member {key!r}; known members: {known}")
        if key == "notification":
            doc["notification"] = self.notification(value, doc.get("notification"))
        else:
            doc[key] = parser(self, value)

    def text(self, value: Any, what: str) -> str:
        if not isinstance(value, str):
            raise BadRequestData(f"{what} must be a string")
        if len(value) > _MAX_TEXT:
            raise BadRequestData(f"{what} is longer than {_MAX_TEXT} characters")
        return value

    def boolean(self, value: Any, what: str) -> bool:
        if not isinstance(value, bool):
            raise BadRequestData(f"{what} must be true or false, got {value!r}")
        return value

    def seconds(self, value: Any, what: str, *, minimum: float = 0) -> float | int:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise BadRequestData(f"{what} must be a number of seconds, got {value!r}")
        if value <= 0:
            raise BadRequestData(f"{what} must be a positive number of seconds, got {value}")
        if value < minimum:
            raise BadRequestData(f"{what} must be at least {minimum} second(s), got {value}")
        return value

    def names(self, value: Any, what: str) -> list[str]:
        if not isinstance(value, list) or not value:
            raise BadRequestData(f"{what} must be a non-empty list of attribute names")
        return list(dict.fromkeys(self.ctx.expand(check_name(v, f"{what} entry")) for v in value))

    def entities(self, value: Any) -> list[Doc]:
        if not isinstance(value, list) or not value:
            raise BadRequestData("entities must be a non-empty list of entity selectors")
        out: list[Doc] = []
        for index, raw in enumerate(value):
            where = f"entities[{index}]"
            if not isinstance(raw, dict):
                raise BadRequestData(f"{where} must be an object with type (and id or idPattern)")
            unknown = set(raw) - {"id", "idPattern", "type"}
            if unknown:
                raise BadRequestData(f"{where} has unknown members {', '.join(sorted(unknown))}")
            if "type" not in raw:
                raise BadRequestData(f"{where} needs a type (clause 5.2.33)")
            type_text = self.text(raw["type"], f"{where}.type")
            if not type_text.strip():
                raise BadRequestData(f"{where}.type must not be empty")
            selection = parse_type_selection(type_text, self.ctx.expand)
            selector: Doc = {"type": [sorted(alternative) for alternative in selection]}
            if "id" in raw:
                selector["id"] = check_uri(raw["id"], f"{where}.id")
            if "idPattern" in raw:
                pattern = self.text(raw["idPattern"], f"{where}.idPattern")
                try:
                    check_pattern(pattern)
                except BadRequestData as exc:
                    raise BadRequestData(
                        f"{where}.idPattern" + exc.detail.removeprefix("q")
                    ) from None
                selector["idPattern"] = pattern
            out.append(selector)
        return out

    def triggers(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            raise BadRequestData(
                "notificationTrigger must be a non-empty list of: " + ", ".join(TRIGGERS)
            )
        for trigger in value:
            if trigger not in TRIGGERS:
                raise BadRequestData(
                    f"unknown notificationTrigger {trigger!r}; allowed: {', '.join(TRIGGERS)}"
                )
        return list(dict.fromkeys(value))

    def q(self, value: Any) -> str:
        from smartcity.hub.query.qlang import parse_q

        text = self.text(value, "q")
        parse_q(text, max_length=self.limits.max_q_length)
        return text

    def geo(self, value: Any) -> Doc:
        from smartcity.hub.query.geo import parse_geo_query

        if not isinstance(value, dict):
            raise BadRequestData("geoQ must be an object with geometry, coordinates and georel")
        unknown = set(value) - {"geometry", "coordinates", "georel", "geoproperty"}
        if unknown:
            raise BadRequestData(f"geoQ has unknown members {', '.join(sorted(unknown))}")
        for required in ("geometry", "coordinates", "georel"):
            if required not in value:
                raise BadRequestData(f"geoQ needs {required} (clause 5.2.13)")
        geoproperty = value.get("geoproperty", "location")
        query = parse_geo_query(
            value["georel"],
            value["geometry"],
            value["coordinates"],
            geoproperty,
            max_points=self.limits.max_geometry_points,
        )
        assert query is not None
        rendered = query.as_geoq()
        rendered["geoproperty"] = self.ctx.expand(check_name(geoproperty, "geoQ.geoproperty"))
        return rendered

    def scope_q(self, value: Any) -> str:
        from smartcity.hub.query.scope import parse_scope_q

        text = self.text(value, "scopeQ")
        parse_scope_q(text)
        return text

    def expires(self, value: Any) -> str:
        iso = normalise_datetime(value, field="expiresAt")
        if parse_datetime_us(iso, field="expiresAt") <= self.now_us:
            raise BadRequestData(
                f"expiresAt {value!r} is in the past; give a future date-time or omit it"
            )
        return iso

    def lang(self, value: Any) -> str:
        text = self.text(value, "lang")
        if not text.strip():
            raise BadRequestData("lang must not be empty")
        return text

    def dataset_ids(self, value: Any) -> list[str]:
        """Which attribute instances notifications show (clause 4.5.5): datasetId URIs, and
        "@none" for the default instances."""
        if not isinstance(value, list) or not value:
            raise BadRequestData(
                f'datasetId must be a non-empty list of datasetId URIs (or "@none"), got {value!r}'
            )
        return list(
            dict.fromkeys(v if v == "@none" else check_uri(v, "datasetId entry") for v in value)
        )

    def jsonld_context(self, value: Any) -> str:
        url = check_uri(value, "jsonldContext")
        if not re.match(r"^https?://", url):
            raise BadRequestData(f"jsonldContext must be a dereferenceable http(s) URL, got {url}")
        return url

    # notification ------------------------------------------------------------------------------
    def notification(self, value: Any, base: Doc | None) -> Doc:
        if not isinstance(value, dict):
            raise BadRequestData("notification must be an object with an endpoint")
        out: Doc = copy.deepcopy(base) if base else {}
        for key, member in value.items():
            if key in NOTIFICATION_READ_ONLY:
                continue
            if key == "attributes":
                out["attributes"] = self.names(member, "notification.attributes")
            elif key in ("pick", "omit"):
                out[key], nested = self.members(member, f"notification.{key}")
                # braces project the linked entities (clause 4.21), see linked_projection
                out.pop(LINKED, None)
                if nested:
                    out[LINKED] = {"of": key, "nested": nested}
            elif key == "format":
                if member not in FORMATS:
                    raise BadRequestData(
                        f"notification.format must be one of {', '.join(FORMATS)}, got {member!r}"
                    )
                out["format"] = member
            elif key in ("sysAttrs", "showChanges"):
                out[key] = self.boolean(member, f"notification.{key}")
            elif key == "endpoint":
                out["endpoint"] = self.endpoint(member)
            elif key in ("join", "joinLevel"):
                out[key] = _join_member(key, member)
            else:
                raise BadRequestData(f"unknown notification member {key!r}")
        if "endpoint" not in out:
            raise BadRequestData("notification needs an endpoint with a uri")
        if "pick" in out and "omit" in out:
            raise BadRequestData("notification.pick and notification.omit cannot be used together")
        for projection in ("pick", "omit"):
            # attributes is the deprecated form of pick (clause 5.2.14): the two cannot both
            # say which attributes are shown.
            if projection in out and "attributes" in out:
                raise BadRequestData(
                    f"notification.{projection} cannot be used together with "
                    "notification.attributes (deprecated); use pick alone"
                )
        return out

    def members(self, value: Any, what: str) -> tuple[list[str], Doc]:
        """The entity members named (expanded), and the projections of linked entities that
        braces give (``locatedAt{id,name}``, clause 4.21), by expanded relationship name."""
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise BadRequestData(f"{what} must be a non-empty list of entity member names")
        if any("," in v and "{" not in v for v in value):
            raise BadRequestData(f"{what}: give one member per list entry (no commas)")
        # The same projection language as the pick/omit query parameters.
        projection = parse_projection(",".join(value), what)
        return [self._member(n) for n in projection.names], self._nested(projection.nested)

    def _member(self, name: str) -> str:
        return name if name in ("id", "type", "scope") else self.ctx.expand(name)

    def _nested(self, nested: Mapping[str, Projection]) -> Doc:
        return {
            self.ctx.expand(name): {
                "names": [self._member(n) for n in p.names],
                "nested": self._nested(p.nested),
            }
            for name, p in nested.items()
        }

    def endpoint(self, value: Any) -> Doc:
        if not isinstance(value, dict):
            raise BadRequestData("notification.endpoint must be an object with a uri")
        unknown = set(value) - {
            "uri",
            "accept",
            "receiverInfo",
            "notifierInfo",
            "timeout",
            "cooldown",
        }
        if unknown:
            raise BadRequestData(
                f"notification.endpoint has unknown members {', '.join(sorted(unknown))}"
            )
        uri = check_uri(value.get("uri"), "notification.endpoint.uri")
        endpoint_target(uri)  # validates scheme, host, port and topic
        out: Doc = {"uri": uri, "accept": value.get("accept", JSON)}
        if out["accept"] not in ACCEPTS:
            raise BadRequestData(
                f"notification.endpoint.accept must be {JSON} or {JSONLD}, got {out['accept']!r}"
            )
        if "receiverInfo" in value:
            pairs = self.pairs(value["receiverInfo"], "receiverInfo", header=True)
            # Over HTTP they become headers, which carry ASCII only.
            if uri.lower().startswith("http") and not all(p["value"].isascii() for p in pairs):
                raise BadRequestData("receiverInfo values sent as HTTP headers must be ASCII")
            out["receiverInfo"] = pairs
        if "notifierInfo" in value:
            pairs = self.pairs(value["notifierInfo"], "notifierInfo", header=False)
            for pair in pairs:
                if pair["key"] == MQTT_QOS and pair["value"] not in ("0", "1", "2"):
                    raise BadRequestData(f"notifierInfo {MQTT_QOS} must be 0, 1 or 2")
                if pair["key"] == MQTT_VERSION and pair["value"] not in MQTT_VERSIONS:
                    raise BadRequestData(
                        f"notifierInfo {MQTT_VERSION} must be one of {', '.join(MQTT_VERSIONS)}"
                    )
            out["notifierInfo"] = pairs
        if "timeout" in value:
            timeout = value["timeout"]
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 1:
                raise BadRequestData("notification.endpoint.timeout must be milliseconds (>= 1)")
            out["timeout"] = timeout
        if "cooldown" in value:
            # Clause 5.2.15: after a failure, nothing is sent to the endpoint for this long
            # (see outbox.OutboxWorker._failed: what falls due meanwhile waits, in order).
            cooldown = value["cooldown"]
            number = isinstance(cooldown, int | float) and not isinstance(cooldown, bool)
            if not number or not math.isfinite(cooldown) or not 1 <= cooldown <= MAX_COOLDOWN_MS:
                raise BadRequestData(
                    "notification.endpoint.cooldown must be milliseconds from 1 to "
                    f"{MAX_COOLDOWN_MS} (a day), got {cooldown!r}"
                )
            out["cooldown"] = cooldown
        return out

    def pairs(self, value: Any, what: str, *, header: bool) -> list[dict[str, str]]:
        where = f"notification.endpoint.{what}"
        if not isinstance(value, list):
            raise BadRequestData(f"{where} must be a list of {{key, value}} objects")
        out: list[dict[str, str]] = []
        for pair in value:
            if (
                not isinstance(pair, dict)
                or set(pair) != {"key", "value"}
                or not isinstance(pair["key"], str)
                or not isinstance(pair["value"], str)
            ):
                raise BadRequestData(f"{where} entries must be {{'key': str, 'value': str}}")
            if header and not _HEADER_NAME.match(pair["key"]):
                raise BadRequestData(f"{where} key {pair['key']!r} is not a valid header name")
            if any(c in pair["value"] for c in "\r\n\0"):
                raise BadRequestData(f"{where} value for {pair['key']!r} contains a line break")
            out.append({"key": pair["key"], "value": pair["value"]})
        return out


def q_names(text: str, ctx: ActiveContext) -> dict[str, str]:
    """Expand every attribute name and string literal of q (see the module docstring)."""
    from smartcity.hub.query.qlang import (
        INSTANCE_MEMBERS,
        And,
        Bare,
        Compare,
        Or,
        QNode,
        Range,
        ValueList,
        parse_q,
    )

    names: dict[str, str] = {}

    def literal(item: Any) -> None:
        word = item.text if isinstance(item, Bare) else item
        if isinstance(word, str) and word not in names:
            # A literal that is not a name simply has no expanded form.
            with contextlib.suppress(BadRequestData):
                names[word] = ctx.expand(word)

    def walk(node: QNode) -> None:
        if isinstance(node, And | Or):
            for child in node.items:
                walk(child)
            return
        for name in node.attr_path:
            if name not in INSTANCE_MEMBERS:
                names[name] = ctx.expand(name)
        if isinstance(node, Compare) and node.op in ("==", "!="):
            if isinstance(node.value, ValueList):
                for each in node.value.items:
                    literal(each)
            elif not isinstance(node.value, Range):
                literal(node.value)

    walk(parse_q(text))
    return names


_MEMBERS: dict[str, Callable[[_Parser, Any], Any]] = {
    "subscriptionName": lambda p, v: p.text(v, "subscriptionName"),
    "description": lambda p, v: p.text(v, "description"),
    "entities": lambda p, v: p.entities(v),
    "watchedAttributes": lambda p, v: p.names(v, "watchedAttributes"),
    "notificationTrigger": lambda p, v: p.triggers(v),
    "q": lambda p, v: p.q(v),
    "geoQ": lambda p, v: p.geo(v),
    "scopeQ": lambda p, v: p.scope_q(v),
    "isActive": lambda p, v: p.boolean(v, "isActive"),
    "notification": lambda p, v: p.notification(v, None),
    "expiresAt": lambda p, v: p.expires(v),
    "throttling": lambda p, v: p.seconds(v, "throttling"),
    # Clause 5.2.12 sets minimum 1 for timeInterval (it also keeps the notifier from spinning).
    "timeInterval": lambda p, v: p.seconds(v, "timeInterval", minimum=1),
    "lang": lambda p, v: p.lang(v),
    "jsonldContext": lambda p, v: p.jsonld_context(v),
    "datasetId": lambda p, v: p.dataset_ids(v),
    "localOnly": lambda p, v: p.boolean(v, "localOnly"),
}


def _join_member(key: str, value: Any) -> Any:
    """notification.join / joinLevel: linked entities in notifications (clause 4.5.23)."""
    if key == "join":
        if value not in (*JOIN_MODES, "@none"):
            raise BadRequestData(f"notification.join must be inline, flat or @none, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOIN_LEVEL:
        raise BadRequestData(
            f"notification.joinLevel must be a whole number from 1 to {MAX_JOIN_LEVEL}, "
            f"got {value!r}"
        )
    return value


def _check_whole(doc: Doc) -> None:
    """Rules that involve several members (checked after create and after every PATCH)."""
    if "notification" not in doc:
        raise BadRequestData("a subscription needs a notification member with an endpoint")
    if "entities" not in doc and "watchedAttributes" not in doc:
        raise BadRequestData(
            "a subscription needs entities or watchedAttributes (or both) to say what it is about"
        )
    if "timeInterval" in doc:
        if "watchedAttributes" in doc:
            raise BadRequestData(
                "timeInterval (periodic) cannot be combined with watchedAttributes (on change)"
            )
        if "throttling" in doc:
            raise BadRequestData(
                "timeInterval (periodic) cannot be combined with throttling (on change)"
            )
        if "entities" not in doc:
            raise BadRequestData("a periodic subscription (timeInterval) needs entities")
    notification = doc["notification"]
    if notification.get("showChanges") and notification.get("format") == "keyValues":
        raise BadRequestData("notification.showChanges cannot be true with format keyValues")


def _finish(doc: Doc, ctx: ActiveContext, *, q_changed: bool) -> None:
    _check_whole(doc)
    if "q" not in doc:
        doc.pop("qNames", None)
    elif q_changed:
        doc["qNames"] = q_names(doc["q"], ctx)


def parse_subscription(
    payload: Any, ctx: ActiveContext, *, context: Any, limits: Limits, now_us: int
) -> Doc:
    """Validate a Create Subscription payload (clause 5.8.1) into the stored layout."""
    if not isinstance(payload, dict):
        raise BadRequestData("a subscription must be a JSON object")
    if payload.get("type") != "Subscription":
        raise BadRequestData(
            f"a subscription needs type 'Subscription', got {payload.get('type')!r}"
        )
    sub_id = check_uri(payload["id"], "subscription id") if "id" in payload else None
    doc: Doc = {"id": sub_id or new_subscription_id(), "type": "Subscription"}
    parser = _Parser(ctx, limits, now_us)
    for key, value in payload.items():
        if key in ("id", "type") or key in READ_ONLY:
            continue
        parser.member(doc, key, value)
    doc.setdefault("isActive", True)
    _finish(doc, ctx, q_changed=True)
    doc["context"] = context
    iso = iso_from_us(now_us)
    doc["createdAt"] = iso
    doc["modifiedAt"] = iso
    return doc


def apply_fragment(
    old: Doc, fragment: Any, ctx: ActiveContext, *, context: Any, limits: Limits, now_us: int
) -> Doc:
    """Update Subscription (clause 5.8.2): the fragment's members replace the stored ones;
    inside ``notification`` each given member replaces its stored counterpart."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("the subscription fragment must be a non-empty JSON object")
    if "id" in fragment and fragment["id"] != old["id"]:
        raise BadRequestData(f"the fragment's id {fragment['id']!r} differs from {old['id']}")
    if "type" in fragment and fragment["type"] != "Subscription":
        raise BadRequestData("a subscription's type is always 'Subscription'")
    doc = copy.deepcopy(old)
    parser = _Parser(ctx, limits, now_us)
    for key, value in fragment.items():
        if key in ("id", "type") or key in READ_ONLY:
            continue
        if value == NULL_URI and key in REMOVABLE:
            doc.pop(key, None)
            continue
        parser.member(doc, key, value)
    # An unchanged q keeps the names it was expanded with, whatever this request's @context.
    _finish(doc, ctx, q_changed="q" in fragment)
    if context is not None:
        doc["context"] = context
    doc["modifiedAt"] = iso_from_us(now_us)
    return doc


# -- endpoints -------------------------------------------------------------------------------


def endpoint_target(uri: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, topic-or-path) of an endpoint URI, validated."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise BadRequestData(f"notification.endpoint.uri {uri!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BadRequestData(
            f"notification.endpoint.uri must use http, https, mqtt or mqtts, got {scheme!r}"
        )
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise BadRequestData(f"notification.endpoint.uri {uri!r} has an invalid port") from None
    if not host:
        raise BadRequestData(f"notification.endpoint.uri {uri!r} has no host")
    if scheme in ("http", "https"):
        try:
            httpx.URL(uri)  # what the sender will send to
        except httpx.InvalidURL as exc:
            raise BadRequestData(f"notification.endpoint.uri {uri!r} is malformed: {exc}") from None
    topic = parts.path
    if scheme.startswith("mqtt"):
        topic = topic.lstrip("/")
        if not topic:
            raise BadRequestData(
                f"notification.endpoint.uri {uri!r} needs a topic: mqtt://host[:port]/topic"
            )
        if "+" in topic or "#" in uri:  # '#' would otherwise be read as a URL fragment
            raise BadRequestData("an MQTT notification topic cannot contain the wildcards + or #")
    return scheme, host, port, topic


def check_target(uri: str, forbid_private: bool) -> None:
    """SSRF guard at create/update time: refuse receivers on private/loopback networks when
    configured to (a clear 400 now; the senders check again at every connection). Resolves
    the host name, so call it off the event loop."""
    if not forbid_private:
        return
    scheme, host, port, _ = endpoint_target(uri)
    guard = TargetGuard(forbid_private=True)
    what = f"notification endpoint {uri}"
    if scheme in ("http", "https"):
        guard.check_url(uri, what)  # the host as the HTTP client will parse it
    else:
        guard.check_host(host, port or (8883 if scheme == "mqtts" else 1883), what)


def notification_context(doc: Doc) -> Any:
    """The @context notifications are compacted with: jsonldContext, else the subscription's."""
    return doc.get("jsonldContext") or doc.get("context")


# -- status and rendering --------------------------------------------------------------------


def cooldown_seconds(doc: Doc) -> float:
    """notification.endpoint.cooldown in seconds (0 without one)."""
    ms = doc.get("notification", {}).get("endpoint", {}).get("cooldown", 0)
    return float(ms) / 1000


def status_of(doc: Doc, now_us: int) -> str:
    if "expiresAt" in doc and parse_datetime_us(doc["expiresAt"], field="expiresAt") <= now_us:
        return "expired"
    return "active" if doc.get("isActive", True) else "paused"


def triggers_of(doc: Doc) -> frozenset[str]:
    return frozenset(doc.get("notificationTrigger") or DEFAULT_TRIGGERS)


def _types_text(alternatives: list[list[str]], ctx: ActiveContext) -> str:
    # ';' (all of) binds tighter than ',' (any of) in the type selection language.
    return ",".join(";".join(ctx.compact(t) for t in group) for group in alternatives)


def render_subscription(
    doc: Doc, stats: Mapping[str, Any], ctx: ActiveContext, *, sys_attrs: bool, now_us: int
) -> Doc:
    """The client's view of a stored subscription, compacted with the request's @context.
    ``stats`` holds the status columns (times_sent, last_success, ...)."""
    out: Doc = {"id": doc["id"], "type": "Subscription"}
    for key in ("subscriptionName", "description"):
        if key in doc:
            out[key] = doc[key]
    if "entities" in doc:
        selectors = []
        for selector in doc["entities"]:
            rendered = {k: selector[k] for k in ("id", "idPattern") if k in selector}
            rendered["type"] = _types_text(selector["type"], ctx)
            selectors.append(rendered)
        out["entities"] = selectors
    if "watchedAttributes" in doc:
        out["watchedAttributes"] = [ctx.compact(a) for a in doc["watchedAttributes"]]
    out["notificationTrigger"] = list(doc.get("notificationTrigger") or DEFAULT_TRIGGERS)
    for key in ("q", "scopeQ", "timeInterval", "throttling", "expiresAt", "lang"):
        if key in doc:
            out[key] = doc[key]
    if "geoQ" in doc:
        out["geoQ"] = {**doc["geoQ"], "geoproperty": ctx.compact(doc["geoQ"]["geoproperty"])}
    out["isActive"] = doc.get("isActive", True)
    if "localOnly" in doc:
        out["localOnly"] = doc["localOnly"]
    if "jsonldContext" in doc:
        out["jsonldContext"] = doc["jsonldContext"]
    if "datasetId" in doc:
        out["datasetId"] = list(doc["datasetId"])
    out["notification"] = _render_notification_params(doc["notification"], stats, ctx)
    out["status"] = status_of(doc, now_us)
    if sys_attrs:
        out["createdAt"] = doc["createdAt"]
        out["modifiedAt"] = doc["modifiedAt"]
    return out


def _render_member(name: str, nested: Doc, ctx: ActiveContext) -> str:
    """A pick/omit entry as the client wrote it: ``locatedAt{id,name}``."""
    text = name if name in ("id", "type", "scope") else ctx.compact(name)
    if name not in nested:
        return text
    inner = nested[name]
    members = ",".join(_render_member(m, inner["nested"], ctx) for m in inner["names"])
    return f"{text}{{{members}}}"


def linked_projection(params: Doc) -> tuple[dict[str, Projection], bool]:
    """The stored braces of notification.pick/omit as linking.Projection, by expanded
    relationship name, and whether they pick (else omit)."""
    linked = params.get(LINKED)
    if not linked:
        return {}, False

    def build(nested: Doc) -> dict[str, Projection]:
        return {iri: Projection(tuple(p["names"]), build(p["nested"])) for iri, p in nested.items()}

    return build(linked["nested"]), linked["of"] == "pick"


def _render_notification_params(params: Doc, stats: Mapping[str, Any], ctx: ActiveContext) -> Doc:
    out: Doc = {}
    if "attributes" in params:
        out["attributes"] = [ctx.compact(a) for a in params["attributes"]]
    linked = params.get(LINKED, {})
    for key in ("pick", "omit"):
        if key in params:
            nested = linked.get("nested", {}) if linked.get("of") == key else {}
            out[key] = [_render_member(m, nested, ctx) for m in params[key]]
    out["format"] = params.get("format", "normalized")
    for key in ("sysAttrs", "showChanges", "join", "joinLevel"):
        if key in params:
            out[key] = params[key]
    out["endpoint"] = copy.deepcopy(params["endpoint"])
    sent = stats.get("times_sent") or 0
    failed = stats.get("times_failed") or 0
    # The spec gives these counters minimum 1: they are left out until something happened.
    if sent:
        out["timesSent"] = sent
    if failed:
        out["timesFailed"] = failed
    last_success, last_failure = stats.get("last_success"), stats.get("last_failure")
    if stats.get("last_notification") is not None:
        out["lastNotification"] = iso_from_us(stats["last_notification"])
    if last_success is not None:
        out["lastSuccess"] = iso_from_us(last_success)
    if last_failure is not None:
        out["lastFailure"] = iso_from_us(last_failure)
    if last_success is not None or last_failure is not None:
        ok = last_failure is None or (last_success is not None and last_success >= last_failure)
        out["status"] = "ok" if ok else "failed"
    return out
