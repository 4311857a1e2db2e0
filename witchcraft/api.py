"""The JSON API for the Witchcraft client app: ``/api/v1/`` (OpenAPI at ``/api/v1/openapi.json``,
interactive docs at ``/api/v1/docs``). Each app contributes a router.

One error shape for everything: ``{"error": {"code": ..., "message": ..., "details": ...}}``.

Every operation is public (``auth=None``) or declares the one scope it needs
(``auth=scoped(...)``, accounts.bearer); the default refuses every credential, so an operation
that forgets is never open (and witchcraft/tests/test_api_scopes.py names it). The OpenAPI
document shows each operation's scope under the ``bearerAuth`` scheme and as
``x-required-scope``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.openapi.schema import OpenAPISchema

from accounts import scopes
from accounts.bearer import InsufficientScope, ScopedBearer, undeclared
from billing.throttle import TierRateThrottle
from witchcraft.platform import db_errors, outage, refusals
from witchcraft.platform.api_errors import CODES

logger = logging.getLogger(__name__)

SECURITY_SCHEME = "bearerAuth"


class ScopedOpenAPISchema(OpenAPISchema):
    """Ninja's document, with each operation's scope in its security requirement (ninja lists
    none, under the auth class's name) and as ``x-required-scope``."""

    def operation_security(self, operation):
        result = []
        for auth in operation.auth_callbacks:
            if isinstance(auth, ScopedBearer):
                result.append({SECURITY_SCHEME: [auth.scope] if auth.scope else []})
                self.securitySchemes[SECURITY_SCHEME] = {
                    **auth.openapi_security_schema,
                    "description": SCOPES_DESCRIPTION,
                }
        return result or None

    def operation_details(self, operation):
        details = super().operation_details(operation)
        scope = next((a.scope for a in operation.auth_callbacks if getattr(a, "scope", None)), None)
        if scope is not None:
            details["x-required-scope"] = scope
            sentence = f"Requires the scope `{scope}`."
            details["description"] = (
                f"{details.get('description', '').strip()}\n\n{sentence}".strip()
            )
        return details


SCOPES_DESCRIPTION = (
    "An access token (`wc_...`) from `POST /auth/login`, `POST /tokens` or the tokens page, or a"
    " service credential (`wcs_...`, staff-issued) with the header `Witchcraft-User: <user id>`."
    " Scopes: "
    + "; ".join(f"`{scope}`: {scopes.DESCRIPTIONS[scope]}" for scope in scopes.ALL)
    + "."
)


class WitchcraftAPI(NinjaAPI):
    """The API, with the error answers every operation can give documented in its schema."""

    ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 422, 429)

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        schema = ScopedOpenAPISchema(self, path_prefix)
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
        "(from `POST /auth/login` or the tokens page). Each operation needs one scope (its "
        "`x-required-scope`); a token without it gets 403 `insufficient_scope`. Errors are "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    urls_namespace="api",
    auth=undeclared(),
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


@api.exception_handler(InsufficientScope)
def _insufficient_scope(request, exc: InsufficientScope):
    response = error_response(
        request,
        403,
        exc.message,
        code="insufficient_scope",
        details={"required": exc.required, "granted": exc.granted},
    )
    challenge = 'Bearer error="insufficient_scope"'
    response["WWW-Authenticate"] = (
        f'{challenge}, scope="{exc.required}"' if exc.required else challenge
    )
    return response


@api.exception_handler(Throttled)
def _throttled(request, exc: Throttled):
    response = error_response(
        request, 429, "Too many requests for your plan (counted per account); slow down."
    )
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
    """Every refusal of every app: the endpoints let them propagate to here."""
    answer = refusals.refusal_answer(exc)
    return error_response(
        request,
        answer.api_status,
        exc.message,
        code=answer.api_code,
        details=refusals.refusal_details(exc),
    )


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
    if outage.is_database_unavailable(exc):
        outage.mark_unavailable(request, exc)
        response = error_response(request, 503, outage.MESSAGE, code=outage.CODE)
        response["Retry-After"] = str(outage.RETRY_AFTER_SECONDS)
        return response
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
