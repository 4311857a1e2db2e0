"""The JSON API for the Witchcraft client app: ``/api/v1/`` (OpenAPI at ``/api/v1/openapi.json``,
interactive docs at ``/api/v1/docs``). Each app contributes a router.

One error shape for everything: ``{"error": {"code": ..., "message": ..., "details": ...}}``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from accounts.bearer import TierRateThrottle, token_required
from witchcraft import db_errors

logger = logging.getLogger(__name__)

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
}
REFUSAL_STATUS = {db_errors.INVALID: 422, db_errors.FORBIDDEN: 403, db_errors.CONFLICT: 409}


class ApiError(HttpError):
    """An answer other than success: status, code, message and optional details."""

    def __init__(self, status: int, message: str, *, code: str | None = None, details=None):
        super().__init__(status, message)
        self.code = code or CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
        self.details = details


class WitchcraftAPI(NinjaAPI):
    """The API, with the error answers every operation can give documented in its schema."""

    ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 422, 429)

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status in self.ERROR_STATUSES:
                    responses.setdefault(
                        str(status),
                        {
                            "description": HTTPStatus(status).phrase,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                    )
        return schema


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_error"]},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}

api = WitchcraftAPI(
    title="Witchcraft API",
    version="1",
    description=(
        "The Witchcraft client app's API. Authenticate with `Authorization: Bearer <token>` "
        "(from `POST /auth/login` or the security page). Errors are "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    urls_namespace="api",
    auth=token_required,
    throttle=[TierRateThrottle()],
)


def error_response(request, status: int, message: str, *, code: str | None = None, details=None):
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return api.create_response(request, body, status=status)


def _field(loc) -> str:
    """``["body", "payload", "tokens"]`` -> ``tokens``: the field as the client wrote it."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload", "form")]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    details = [
        {"field": _field(error.get("loc", ())), "message": error.get("msg", "Invalid value.")}
        for error in exc.errors
    ]
    first = details[0]["field"] if details else "input"
    return error_response(request, 422, f"Invalid value for {first}.", details=details)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    response = error_response(
        request, 401, "A valid bearer token is required (missing, expired or revoked)."
    )
    response["WWW-Authenticate"] = 'Bearer realm="witchcraft"'
    return response


@api.exception_handler(Throttled)
def _throttled(request, exc: Throttled):
    response = error_response(request, 429, "Too many requests for your plan; slow down.")
    response["Retry-After"] = str(exc.wait or 1)
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return error_response(
        request,
        exc.status_code,
        str(exc),
        code=getattr(exc, "code", None),
        details=getattr(exc, "details", None),
    )


@api.exception_handler(db_errors.Refused)
def _refused(request, exc: db_errors.Refused):
    return error_response(request, REFUSAL_STATUS.get(exc.code, 400), exc.message)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error_response(request, 404, "Not found.")


@api.exception_handler(ObjectDoesNotExist)
def _does_not_exist(request, exc):
    return error_response(request, 404, "Not found.")


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return error_response(request, 413, "The request body is too large.")


@api.exception_handler(Exception)
def _unexpected(request, exc):
    logger.exception("API error on %s %s", request.method, request.path)
    return error_response(request, 500, "Something went wrong on our side.")


def _mount_routers() -> None:
    from accounts.api import router as accounts_router
    from agents.api import router as agents_router
    from billing.api import router as billing_router
    from usage.api import router as usage_router

    api.add_router("/", accounts_router)
    api.add_router("/agents", agents_router)
    api.add_router("/", usage_router)
    api.add_router("/", billing_router)


_mount_routers()
