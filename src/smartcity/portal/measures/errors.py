"""Errors the measure service raises; the API turns them into ProblemDetails."""

from __future__ import annotations


class PortalError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(PortalError):
    status = 404
    title = "Not found"


class Forbidden(PortalError):
    status = 403
    title = "Forbidden"


class InvalidUpdate(PortalError, ValueError):
    status = 400
    title = "Invalid update"
