"""NGSI-LD errors, rendered as RFC 7807 ProblemDetails with the specification's type URIs."""

from __future__ import annotations

from typing import Any

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiError(Exception):
    """An error the client can act on; ``detail`` says what was wrong and how to fix it."""

    type_name = "InternalError"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return ERROR_BASE + self.type_name

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class InvalidRequest(NgsiError):
    type_name = "InvalidRequest"
    status = 400
    title = "Invalid request"


class BadRequestData(NgsiError):
    type_name = "BadRequestData"
    status = 400
    title = "Bad request data"


class AlreadyExists(NgsiError):
    type_name = "AlreadyExists"
    status = 409
    title = "Already exists"


class OperationNotSupported(NgsiError):
    type_name = "OperationNotSupported"
    status = 422
    title = "Operation not supported"


class ResourceNotFound(NgsiError):
    type_name = "ResourceNotFound"
    status = 404
    title = "Resource not found"


class TooComplexQuery(NgsiError):
    type_name = "TooComplexQuery"
    status = 403
    title = "Too complex query"


class TooManyResults(NgsiError):
    type_name = "TooManyResults"
    status = 403
    title = "Too many results"


class LdContextNotAvailable(NgsiError):
    type_name = "LdContextNotAvailable"
    status = 503
    title = "JSON-LD @context not available"


class DatabaseUnavailable(NgsiError):
    """The database could not be reached (restarting, failing over): try again shortly.
    Answered with a Retry-After header (hub/api/negotiation.py)."""

    # Not in the NGSI-LD error catalogue (which has no "try later"); the ingestion API's type.
    type_name = "ServiceUnavailable"
    status = 503
    title = "Service unavailable"
    retry_after_s = 2

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            detail
            or "the database is unavailable (restarting or failing over); retry after "
            f"{self.retry_after_s} s"
        )


class PayloadTooLarge(NgsiError):
    # Not in the NGSI-LD error catalogue; InvalidRequest is the closest specified type.
    type_name = "InvalidRequest"
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(NgsiError):
    type_name = "InvalidRequest"
    status = 415
    title = "Unsupported media type"


class NotAcceptable(NgsiError):
    type_name = "InvalidRequest"
    status = 406
    title = "Not acceptable"


class Unauthorized(NgsiError):
    type_name = "Unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(NgsiError):
    type_name = "Forbidden"
    status = 403
    title = "Forbidden"


class NonexistentTenant(NgsiError):
    type_name = "NonexistentTenant"
    status = 404
    title = "Nonexistent tenant"


class Conflict(NgsiError):
    type_name = "Conflict"
    status = 409
    title = "Conflict"


class HistoryArchived(NgsiError):
    """A temporal query reaching into months that ``smartcity history retain`` moved out of
    the database into Parquet. NGSI-LD defines no error for this, so the type is the
    platform's own URN; the detail says from when the history is kept and where the archive
    is (docs/hub.md, "Archived history")."""

    type_name = "HistoryArchived"
    status = 410
    title = "History archived"

    @property
    def type_uri(self) -> str:
        return "urn:smartcity:errors:HistoryArchived"
