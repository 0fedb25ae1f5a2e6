"""The catalogue's errors, one class per CKAN error type (``error.__type`` in the envelope).

The catalogue and search raise these; ``ckan/envelope.py`` renders them as CKAN does
(status code, ``__type``, message or per-field messages), and the web pages of a later slice
can render them their own way.
"""

from __future__ import annotations


class OpenDataError(Exception):
    status = 500
    type_name = "Internal Server Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(OpenDataError):
    status = 404
    type_name = "Not Found Error"


class NotAuthorized(OpenDataError):
    status = 403
    type_name = "Authorization Error"


class BadRequest(OpenDataError):
    """The request itself is unusable (not JSON, not an object, unknown action)."""

    status = 400
    type_name = "Bad Request"


class NotAcceptable(OpenDataError):
    """Content negotiation found no representation the client accepts."""

    status = 406
    type_name = "Not Acceptable"


class SearchQueryError(OpenDataError):
    status = 400
    type_name = "Search Query Error"


class ValidationFailed(OpenDataError):
    """Per-field messages, as CKAN sends them: ``{"name": ["That URL is already in use."]}``."""

    status = 409
    type_name = "Validation Error"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    @classmethod
    def one(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})
