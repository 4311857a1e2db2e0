"""Access tokens: the client app's bearer tokens and API keys.

A raw token is ``wc_`` and 256 random bits from ``secrets`` (URL-safe base64). It is shown
once, when issued; the database keeps its SHA-256 (``idx_access_tokens_token_hash``) and its
first characters (to tell tokens apart), never the token itself, and no audit row or log line
carries it.

Issuing and revoking run in the caller's row-level-security context (a user manages their own
tokens, admins may revoke anyone's). Authentication happens before anyone is known and goes
through the SECURITY DEFINER function ``authenticate_access_token`` (accounts/sql/0008).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import audit
from accounts.models import AccessToken, User
from witchcraft import db_errors, rls

TOKEN_PREFIX = "wc_"  # noqa: S105 (a marker that makes leaked tokens easy to spot)
PREFIX_LENGTH = 10  # stored and shown: "wc_" and the first 7 random characters
MAX_ACTIVE_TOKENS = 50
MAX_TTL_DAYS = 366
NAME_MAX_LENGTH = 100
MAX_SCOPES = 20
SCOPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,31}$")
# Longer than any token we issue; anything longer is refused before hashing.
RAW_MAX_LENGTH = 200

NAME_REQUIRED = "Give the token a name."
NAME_TOO_LONG = f"A token name has at most {NAME_MAX_LENGTH} characters."
NAME_INVALID = "A token name cannot contain line breaks or control characters."
SCOPE_INVALID = (
    "A scope is a lower-case word of at most 32 characters (letters, digits, '_', '.', ':', '-')."
)
TOO_MANY_SCOPES = f"A token has at most {MAX_SCOPES} scopes."
TTL_INVALID = f"A token lives between 1 and {MAX_TTL_DAYS} days."
EMAIL_UNVERIFIED = "Confirm your email address before creating API tokens."
ACCOUNT_INACTIVE = "This account cannot have API tokens."
TOO_MANY_TOKENS = (
    f"You already have {MAX_ACTIVE_TOKENS} active tokens: revoke one before creating another."
)


class TokenError(db_errors.Refused):
    """Issuing a token was refused. ``code`` says how to answer (``db_errors.INVALID`` 400,
    ``FORBIDDEN`` 403, ``CONFLICT`` 409), ``field`` names the input at fault (or None)."""

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(code, message)
        self.field = field


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: ``raw`` is the only copy of the secret, to be shown once."""

    token: AccessToken
    raw: str = field(repr=False)


def digest(raw_token: str) -> str:
    """The SHA-256 hex digest stored for a raw token."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise TokenError(db_errors.INVALID, NAME_REQUIRED, field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise TokenError(db_errors.INVALID, NAME_TOO_LONG, field="name")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        raise TokenError(db_errors.INVALID, NAME_INVALID, field="name")
    return name


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted(set(scopes or ()))
    if len(cleaned) > MAX_SCOPES:
        raise TokenError(db_errors.INVALID, TOO_MANY_SCOPES, field="scopes")
    if not all(isinstance(scope, str) and SCOPE_PATTERN.match(scope) for scope in cleaned):
        raise TokenError(db_errors.INVALID, SCOPE_INVALID, field="scopes")
    return cleaned


def _clean_ttl(ttl_days: int | None) -> int:
    ttl = settings.ACCESS_TOKEN_TTL_DAYS if ttl_days is None else ttl_days
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_DAYS:
        raise TokenError(db_errors.INVALID, TTL_INVALID, field="ttl_days")
    return ttl


def token_issue(
    *,
    user_id: int,
    name: str,
    scopes: Iterable[str] = (),
    ttl_days: int | None = None,
    user_agent: str = "",
) -> IssuedToken:
    """Issue a new token for the user; return it with its raw value (shown once).

    Expires after ``ttl_days`` (default ``settings.ACCESS_TOKEN_TTL_DAYS``). Raises TokenError
    and writes nothing when the account is unverified, inactive or deleted, the name or
    scopes are invalid, or the user already has MAX_ACTIVE_TOKENS active tokens.
    """
    with transaction.atomic():
        account = (
            User.objects.filter(pk=user_id)
            .values("is_active", "deleted_at", "email_verified_at")
            .first()
        )
        if account is None or not account["is_active"] or account["deleted_at"] is not None:
            raise TokenError(db_errors.FORBIDDEN, ACCOUNT_INACTIVE)
        if account["email_verified_at"] is None:
            raise TokenError(db_errors.FORBIDDEN, EMAIL_UNVERIFIED)
        name = _clean_name(name)
        scopes = _clean_scopes(scopes)
        ttl = _clean_ttl(ttl_days)
        # Parallel requests of one user must not get past the limit together.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"access_tokens:user:{user_id}"],
            )
        now = timezone.now()
        active = AccessToken.objects.filter(
            user_id=user_id, revoked_at__isnull=True, expires_at__gt=now
        ).count()
        if active >= MAX_ACTIVE_TOKENS:
            raise TokenError(db_errors.CONFLICT, TOO_MANY_TOKENS)
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = AccessToken.objects.create(
            user_id=user_id,
            name=name,
            token_hash=digest(raw),
            prefix=raw[:PREFIX_LENGTH],
            scopes=scopes,
            created_at=now,
            expires_at=now + timedelta(days=ttl),
        )
        audit.audit_event(
            audit.TOKEN_CREATED,
            user_id=user_id,
            target_type="access_token",
            target_id=token.pk,
            details={
                "name": name,
                "prefix": token.prefix,
                "scopes": scopes,
                "expires_at": token.expires_at.isoformat(),
            },
            user_agent=user_agent,
        )
    return IssuedToken(token=token, raw=raw)


def token_authenticate(
    *, raw_token: str, ip: str = "", user_agent: str = ""
) -> tuple[User, AccessToken] | None:
    """Return ``(user, token)`` for a good bearer token, or None (answer 401).

    None when the token is unknown, revoked, expired (``expires_at <= now``), or its user is
    inactive or deleted. Records the token's last use (at most once a minute) and audits an
    expired token presented (``token_expired``, once per token). Works before any identity is
    known, inside a request's context or outside any transaction.
    """
    if (
        not isinstance(raw_token, str)
        or not raw_token.startswith(TOKEN_PREFIX)
        or len(raw_token) > RAW_MAX_LENGTH
    ):
        return None
    try:
        address = str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        address = None
    arguments = [digest(raw_token), address, audit.clean_text(user_agent, 300)]
    if not connection.in_atomic_block:
        # The API's case (accounts.bearer, before the request's transaction): no identity is
        # set, so the connection is the migration role, which bypasses row-level security.
        # Two statements, each its own transaction: no BEGIN, no savepoint, no identity to set
        # and restore.
        row = _authenticate_access_token(arguments)
        token = None if row is None else _token_row(row[1])
    else:
        with transaction.atomic():
            row = _authenticate_access_token(arguments)
            if row is None:
                return None
            # The user is known now, but not yet the context: read their rows as the service.
            with rls.service_context():
                token = _token_row(row[1])
    if token is None:  # unknown, or deleted in between (the daily sweep)
        return None
    return token.user, token


def _authenticate_access_token(arguments: list) -> tuple[int, int] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT out_user_id, out_token_id FROM authenticate_access_token("
            "p_token_hash => %s, p_ip => %s::inet, p_user_agent => %s)",
            arguments,
        )
        return cursor.fetchone()


@functools.cache
def _token_row_statement() -> tuple[str, list, list]:
    token_fields = list(AccessToken._meta.concrete_fields)
    user_fields = list(User._meta.concrete_fields)
    columns = [f't."{f.column}"' for f in token_fields] + [f'u."{f.column}"' for f in user_fields]
    # The column names come from the models; the id is a parameter.
    sql = (
        f"SELECT {', '.join(columns)} FROM access_tokens t"  # noqa: S608
        " JOIN users u ON u.id = t.user_id WHERE t.id = %s"
    )
    return sql, token_fields, user_fields


def _token_row(token_id: int) -> AccessToken | None:
    """The token and its user in one plain statement (the ORM's select_related() compiles its
    query anew on every call: most of an API request's authentication time). Run it after
    authenticate_access_token(): it sees the last use that call recorded."""
    sql, token_fields, user_fields = _token_row_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_fields)
    token = AccessToken.from_db(connection.alias, [f.attname for f in token_fields], row[:split])
    token.user = User.from_db(connection.alias, [f.attname for f in user_fields], row[split:])
    return token


def token_revoke(*, user_id: int, token_id: int, user_agent: str = "") -> bool:
    """Revoke the token ``token_id`` of user ``user_id``; return whether it was revoked now.

    False when the user has no such active token, or row-level security hides it from the
    caller (a user revokes their own tokens; admins anyone's). Audited (``token_revoked``).
    """
    with transaction.atomic():
        revoked = AccessToken.objects.filter(
            pk=token_id, user_id=user_id, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not revoked:
            return False
        token = AccessToken.objects.values("name", "prefix").get(pk=token_id)
        audit.audit_event(
            audit.TOKEN_REVOKED,
            user_id=user_id,
            target_type="access_token",
            target_id=token_id,
            details={"name": token["name"], "prefix": token["prefix"]},
            user_agent=user_agent,
        )
    return True


def tokens_revoke_all(*, user_id: int) -> int:
    """Revoke every active token of the user; return how many (the caller audits)."""
    return AccessToken.objects.filter(user_id=user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
