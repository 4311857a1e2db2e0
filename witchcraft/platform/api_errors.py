"""The API's error answer, on the ground floor so that every app's router raises it without
importing the API root (witchcraft/api.py mounts the routers and renders every error in one
shape: ``{"error": {"code": ..., "message": ..., "details": ...}}``)."""

from __future__ import annotations

from http import HTTPStatus

from ninja.errors import HttpError

from witchcraft.platform import outage

CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "quota_exceeded",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: outage.CODE,
}


class ApiError(HttpError):
    """An answer other than success: status, code, message and optional details."""

    def __init__(self, status: int, message: str, *, code: str | None = None, details=None):
        super().__init__(status, message)
        self.code = code or CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
        self.details = details
