"""Accounts over JSON: sign-up, sign-in (returns a bearer token), sign-out, the caller, tokens.

The same flows as the pages (accounts.services, accounts.login, accounts.tokens)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from accounts import login, registration, tokens, twofactor
from accounts.bearer import own_token, scoped
from accounts.models import AccessToken, User
from accounts.scopes import ACCOUNT, ALL, TOKENS_MANAGE
from witchcraft.platform import rls
from witchcraft.platform.api_errors import ApiError
from witchcraft.platform.api_types import Line, ObjectInput, Text
from witchcraft.platform.ratelimit import hit

router = Router(tags=["accounts"])

CHECK_INBOX = "If the address is new, the account is created: confirm it from the mail we sent."
SECOND_FACTOR_REQUIRED = "This account uses two-factor sign-in: send the code as `otp`."


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class RegisterIn(ObjectInput):
    email: Line = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    password: Text = Field(min_length=10, max_length=1024)
    full_name: Line = Field("", max_length=200)


class NoticeOut(Schema):
    message: str


class LoginIn(ObjectInput):
    email: Line = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    password: Text = Field(min_length=1, max_length=1024)
    otp: Line | None = Field(None, max_length=32, description="two-factor code, when enabled")
    token_name: Line = Field("Witchcraft app", min_length=1, max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedTokenOut(Schema):
    token: str = Field(description="the bearer token: shown once, store it now")
    token_info: TokenOut


class TokenIn(ObjectInput):
    name: Line = Field(min_length=1, max_length=100)
    scopes: list[Line] = Field(
        default_factory=list,
        max_length=len(ALL),
        description=(
            "scopes of the new token, each one this token holds: "
            + ", ".join(ALL)
            + ". Absent or empty: this token's scopes."
        ),
    )
    ttl_days: int | None = Field(
        None,
        ge=1,
        le=settings.ACCESS_TOKEN_MAX_TTL_DAYS,
        strict=True,
        description="days of life (default: ACCESS_TOKEN_TTL_DAYS), never past this token's",
    )


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    email_verified: bool
    date_joined: datetime


def _limit(request, action: str) -> None:
    wait = hit(action, rls.client_ip(request) or "unknown")
    if wait is not None:
        raise ApiError(429, "Too many attempts; wait and try again.", details={"retry_after": wait})


def _issue(
    user: User, *, name: str, scopes=(), ttl_days=None, parent=None, request
) -> IssuedTokenOut:
    """Issue a token for ``user`` as that user (at sign-in no one is signed in yet); a refusal
    (tokens.TokenError) is answered by the API's one handler."""
    with rls.user_context(user, ip=rls.client_ip(request)):
        issued = tokens.token_issue(
            user_id=user.pk,
            name=name,
            scopes=scopes,
            ttl_days=ttl_days,
            parent=parent,
            user_agent=request.headers.get("User-Agent", ""),
        )
    return IssuedTokenOut(token=issued.raw, token_info=TokenOut.model_validate(issued.token))


@router.post("/auth/register", auth=None, response={202: NoticeOut}, summary="Create an account")
def register(request, payload: RegisterIn):
    """Answers the same whether or not the address already has an account (its owner is mailed
    that someone tried, as from the sign-up page)."""
    _limit(request, "register")
    registration.registration_submit(
        email=payload.email,
        password=payload.password,
        full_name=payload.full_name,
        ip=rls.client_ip(request),
    )
    return Status(202, {"message": CHECK_INBOX})


@router.post(
    "/auth/login", auth=None, response={201: IssuedTokenOut}, summary="Sign in: get a token"
)
def login_token(request, payload: LoginIn):
    """Checks the password (and the two-factor code when enabled) and returns a new bearer
    token, shown once. Unverified accounts get 403: confirm the address first."""
    _limit(request, "login")
    user = login.login_check(
        email=payload.email,
        password=payload.password,
        ip=rls.client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
    )
    if user is None:
        raise ApiError(401, login.INVALID_CREDENTIALS, code="invalid_credentials")
    if twofactor.requires_second_factor(user) and (
        not payload.otp
        or twofactor.second_factor_check(request, user=user, code=payload.otp) is None
    ):
        raise ApiError(401, SECOND_FACTOR_REQUIRED, code="second_factor_required")
    return Status(201, _issue(user, name=payload.token_name, request=request))


@router.post(
    "/auth/logout",
    auth=own_token(),
    response={204: None},
    summary="Revoke the token of this request",
    description="Any valid access token may revoke itself; it needs no scope.",
)
def logout_token(request):
    tokens.token_revoke(user_id=request.user.pk, token_id=request.access_token.pk)
    return Status(204, None)


@router.get("/me", auth=scoped(ACCOUNT), response=MeOut, summary="The signed-in user")
def me(request):
    user = request.user
    return MeOut(
        id=user.pk,
        email=user.email,
        full_name=user.full_name,
        email_verified=user.email_verified_at is not None,
        date_joined=user.date_joined,
    )


@router.get(
    "/tokens",
    auth=scoped(TOKENS_MANAGE),
    response=list[TokenOut],
    summary="Your access tokens (newest first)",
)
def token_list(request):
    return list(AccessToken.objects.filter(user_id=request.user.pk).order_by("-created_at")[:50])


@router.post(
    "/tokens",
    auth=scoped(TOKENS_MANAGE),
    response={201: IssuedTokenOut},
    summary="Create an access token",
)
def token_create(request, payload: TokenIn):
    """The new token holds only scopes this token holds (403 `insufficient_scope` naming the
    others) and expires no later than this token (an explicit `ttl_days` past it: 403)."""
    return Status(
        201,
        _issue(
            request.user,
            name=payload.name,
            scopes=payload.scopes,
            ttl_days=payload.ttl_days,
            parent=request.access_token,
            request=request,
        ),
    )


@router.delete(
    "/tokens/{token_id}",
    auth=scoped(TOKENS_MANAGE),
    response={204: None},
    summary="Revoke an access token",
)
def token_delete(request, token_id: int):
    get_object_or_404(AccessToken, pk=token_id, user_id=request.user.pk)  # 404 if not yours
    tokens.token_revoke(user_id=request.user.pk, token_id=token_id)
    return Status(204, None)
