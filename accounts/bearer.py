"""Bearer authentication and scopes for the JSON API.

API requests authenticate with ``Authorization: Bearer <credential>`` only, never with the
session cookie (no CSRF exposure). The lookup happens in middleware, before the row-level-security
middleware opens the request's context, so the whole API call runs as the credential's user:

- a user's access token (``wc_...``, accounts.tokens): that user;
- a service credential (``wcs_...``, accounts.service_credentials): the user the header
  ``Witchcraft-User`` names. A user token never acts for anyone else.

Each operation declares the one scope it needs with ``auth=scoped(scope)``; a view that needs a
second one calls ``require_scope(request, scope)``. The middleware also tells the database
whether the request may record usage (``request.may_record``, read by witchcraft.platform.rls).
"""

from __future__ import annotations

import functools

from django.contrib.auth.models import AnonymousUser
from ninja.errors import HttpError
from ninja.security.http import HttpAuthBase

from accounts import scopes as vocabulary
from accounts import service_credentials, tokens
from accounts.service_credentials import USER_HEADER
from witchcraft.platform.rls import client_ip

API_PREFIX = "/api/"

USER_HEADER_MISSING = (
    f"A service credential acts for one user: name them in the header {USER_HEADER}"
    " (their user id)."
)
USER_HEADER_INVALID = f"The header {USER_HEADER} must be a user id (a positive whole number)."
NO_SUCH_USER = "No active account has that user id."
STAFF_ACCOUNT = "A service credential cannot act for a staff account."
NOT_A_SERVICE = f"Only a service credential may act for another user ({USER_HEADER})."
SIGN_OUT_REFUSED = "Only an access token can revoke itself; staff revoke service credentials."
UNDECLARED = "This operation declares no scope, so no credential may call it."


class CredentialRefused(HttpError):
    """The credential is good but the request cannot go on as sent (answered with ``status``,
    ``code``, the message and ``details`` in the API's error shape)."""

    def __init__(self, status: int, code: str, message: str, details=None):
        super().__init__(status, message)
        self.code = code
        self.details = details


class InsufficientScope(Exception):
    """The credential lacks ``required`` (None: the operation declares no scope): answered 403
    ``insufficient_scope`` with ``WWW-Authenticate: Bearer error="insufficient_scope"``."""

    def __init__(self, required: str | None, granted, message: str):
        super().__init__(message)
        self.required = required
        self.granted = vocabulary.ordered(granted)
        self.message = message


class BearerTokenMiddleware:
    """Give API requests the user of their credential (or nobody), and its scopes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            _authenticate(request)
        return self.get_response(request)


def _authenticate(request) -> None:
    request.user = AnonymousUser()
    request.rls_actor = None  # an impersonation lives in a browser session, not here
    request.access_token = None
    request.service_credential = None
    request.scopes = frozenset()
    request.credential_refusal = None  # raised by the operation's auth (its error shape)
    request.may_record = False
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    raw = raw.strip()[: tokens.RAW_MAX_LENGTH]
    if scheme.lower() != "bearer" or not raw:
        return
    named = request.headers.get(USER_HEADER)
    if raw.startswith(service_credentials.RAW_PREFIX):
        _authenticate_service(request, raw, named)
    else:
        found = tokens.token_authenticate(raw_token=raw, ip=client_ip(request))
        if found is None:
            return
        request.user, request.access_token = found
        request.scopes = vocabulary.effective_scopes(request.access_token.scopes)
        if named is not None and named.strip() != str(request.user.pk):
            request.credential_refusal = CredentialRefused(
                403, "forbidden", NOT_A_SERVICE, {"header": USER_HEADER}
            )
    # What the SQL functions that record and reserve read (app.may_record, witchcraft.platform.rls).
    request.may_record = (
        request.credential_refusal is None and vocabulary.USAGE_RECORD in request.scopes
    )


def _authenticate_service(request, raw: str, named: str | None) -> None:
    credential = service_credentials.service_credential_authenticate(raw=raw)
    if credential is None:
        return
    request.service_credential = credential
    request.scopes = credential.scopes
    user_id = service_credentials.parse_user_header(named)
    if user_id is None:
        message = USER_HEADER_MISSING if named is None else USER_HEADER_INVALID
        request.credential_refusal = CredentialRefused(
            422, "validation_error", message, [{"field": USER_HEADER, "message": message}]
        )
        return
    user = service_credentials.acting_user(user_id)
    if user is None:
        request.credential_refusal = CredentialRefused(404, "not_found", NO_SUCH_USER)
    elif user.is_staff:
        # A staff account's requests see every user's rows (auth.is_admin()): a credential
        # that acts for users must never get that by naming one.
        request.credential_refusal = CredentialRefused(403, "forbidden", STAFF_ACCOUNT)
    else:
        request.user = user


class ScopedBearer(HttpAuthBase):
    """Ninja auth: a good bearer credential that holds ``scope``. Shown in the OpenAPI
    document as the ``bearerAuth`` scheme with that scope (witchcraft.api)."""

    openapi_scheme = "bearer"

    def __init__(self, scope: str | None, *, own_token: bool = False):
        self.scope = scope
        self.own_token = own_token
        super().__init__()

    def __call__(self, request):
        refusal = getattr(request, "credential_refusal", None)
        if refusal is not None:
            raise refusal
        token = getattr(request, "access_token", None)
        if token is None and getattr(request, "service_credential", None) is None:
            return None  # answered 401
        if self.own_token:
            if token is None:
                raise CredentialRefused(403, "forbidden", SIGN_OUT_REFUSED)
        elif self.scope is None:
            raise InsufficientScope(None, request.scopes, UNDECLARED)
        else:
            require_scope(request, self.scope)
        return request.user


@functools.cache
def scoped(scope: str) -> ScopedBearer:
    """The auth of an operation that needs ``scope`` (one of accounts.scopes.ALL):
    ``@router.get(..., auth=scoped(scopes.USAGE_READ))``."""
    if scope not in vocabulary.ALL:
        raise ValueError(f"unknown scope {scope!r}: one of {', '.join(vocabulary.ALL)}")
    return ScopedBearer(scope)


@functools.cache
def own_token() -> ScopedBearer:
    """The auth of an operation any valid access token may call on itself (sign-out)."""
    return ScopedBearer(None, own_token=True)


@functools.cache
def undeclared() -> ScopedBearer:
    """The API's default auth: an operation that forgot to declare a scope refuses every
    credential (and the test walking the operations names it)."""
    return ScopedBearer(None)


def require_scope(request, scope: str) -> None:
    """Raise InsufficientScope (403 ``insufficient_scope``) unless the request's credential
    holds ``scope``: for a view that needs a second scope on top of its operation's."""
    if scope not in vocabulary.ALL:
        raise ValueError(f"unknown scope {scope!r}")
    granted = getattr(request, "scopes", frozenset())
    if scope not in granted:
        holder = "service credential" if getattr(request, "service_credential", None) else "token"
        raise InsufficientScope(scope, granted, f"This {holder} lacks the scope {scope}.")
