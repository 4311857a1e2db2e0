"""Access tokens: the client app's bearer tokens and API keys.

A raw token is ``wc_`` and 256 random bits from ``secrets`` (URL-safe base64). It is shown
once, when issued; the database keeps its SHA-256 (``idx_access_tokens_token_hash``) and its
first characters (to tell tokens apart), never the token itself, and no audit row or log line
carries it.

Issuing and revoking run in the caller's row-level-security context (a user manages their own
tokens, admins may revoke anyone's). Authentication happens before anyone is known and goes
through the SECURITY DEFINER function ``authenticate_access_token`` (accounts/sql/0008).

A token holds scopes from one vocabulary (accounts.scopes) and lives at most
``settings.ACCESS_TOKEN_MAX_TTL_DAYS`` (30 or fewer). A token that creates another (``parent``,
POST /tokens) can give it only scopes it holds itself and no later expiry than its own, so a
narrow or short-lived token can never mint a broader or longer-lived one.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import audit
from accounts import scopes as vocabulary
from accounts.models import AccessToken, User
from witchcraft.platform import db_errors, rls

TOKEN_PREFIX = "wc_"  # noqa: S105 (a marker that makes leaked tokens easy to spot)
PREFIX_LENGTH = 10  # stored and shown: "wc_" and the first 7 random characters
MAX_ACTIVE_TOKENS = 50
MAX_TTL_DAYS = 30  # the ceiling of settings.ACCESS_TOKEN_MAX_TTL_DAYS (checked at start-up)
NAME_MAX_LENGTH = 100
# TokenError.code of a token asking for more than the token creating it holds (answered 403).
INSUFFICIENT_SCOPE = db_errors.INSUFFICIENT_SCOPE
# Longer than any token we issue; anything longer is refused before hashing.
RAW_MAX_LENGTH = 200

NAME_REQUIRED = "Give the token a name."
NAME_TOO_LONG = f"A token name has at most {NAME_MAX_LENGTH} characters."
NAME_INVALID = "A token name cannot contain line breaks or control characters."
SCOPES_NOT_A_LIST = "Scopes are a list of scope names."
SCOPE_UNKNOWN = "Unknown scope {scope}: a scope is one of " + ", ".join(vocabulary.ALL) + "."
SCOPE_RECORD_REFUSED = (
    "Tokens of an account cannot record usage on this deployment: the Witchcraft backend that"
    " calls the AI providers records it with its service credential."
)
SCOPES_NOT_HELD = "A token can only give scopes it holds itself; this one does not hold {scopes}."
TTL_INVALID = "A token lives between 1 and {max_days} days."
TTL_PAST_PARENT = (
    "A token cannot outlive the token that creates it, which expires at {expires} (UTC):"
    " ask for fewer days."
)
PARENT_EXPIRED = "The token creating this one has expired."
PARENT_OTHER_ACCOUNT = "A token can only create tokens for its own account."
EMAIL_UNVERIFIED = "Confirm your email address before creating API tokens."
ACCOUNT_INACTIVE = "This account cannot have API tokens."
TOO_MANY_TOKENS = (
    f"You already have {MAX_ACTIVE_TOKENS} active tokens: revoke one before creating another."
)


class TokenError(db_errors.Refused):
    """Issuing a token was refused. ``code`` says how to answer (``db_errors.INVALID``,
    ``FORBIDDEN``, ``INSUFFICIENT_SCOPE``, ``CONFLICT``), ``field`` names the input at fault (or
    None), ``details`` adds what the answer should carry."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, details: dict | None = None
    ):
        super().__init__(code, message, field=field)
        # Never None: the API has always answered a token refusal's field inside an object
        # (``details.field``, null included) with what it adds, never as the list of fields.
        self.details = {} if details is None else details


def ttl_invalid() -> str:
    """The message for a lifetime out of range, with this deployment's cap."""
    return TTL_INVALID.format(max_days=max_ttl_days())


def max_ttl_days() -> int:
    """The longest lifetime of a token on this deployment (never above MAX_TTL_DAYS)."""
    return min(settings.ACCESS_TOKEN_MAX_TTL_DAYS, MAX_TTL_DAYS)


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: ``raw`` is the only copy of the secret, to be shown once."""

    token: AccessToken
    raw: str = field(repr=False)


def digest(raw_token: str) -> str:
    """The SHA-256 hex digest stored for a raw token."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def clean_name(name: str) -> str:
    """The token (or credential) name, trimmed; raises TokenError (field "name") when empty,
    too long or holding control characters."""
    name = (name or "").strip()
    if not name:
        raise TokenError(db_errors.INVALID, NAME_REQUIRED, field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise TokenError(db_errors.INVALID, NAME_TOO_LONG, field="name")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        raise TokenError(db_errors.INVALID, NAME_INVALID, field="name")
    return name


def _clean_scopes(scopes: Iterable[str] | None, *, parent: AccessToken | None) -> list[str]:
    """The scopes to store: those asked for (none: the parent's, or the client app's default),
    each from the vocabulary, usage.record only where user tokens may record, and none the
    parent does not hold."""
    if isinstance(scopes, str | bytes):
        raise TokenError(db_errors.INVALID, SCOPES_NOT_A_LIST, field="scopes")
    asked = list(scopes or ())
    for scope in asked:
        if not isinstance(scope, str) or scope not in vocabulary.ALL:
            name = repr(audit.clean_text(scope, 40)) if isinstance(scope, str) else "(not text)"
            raise TokenError(db_errors.INVALID, SCOPE_UNKNOWN.format(scope=name), field="scopes")
    granted = None if parent is None else vocabulary.effective_scopes(parent.scopes)
    if asked:
        chosen = frozenset(asked)
    else:
        chosen = vocabulary.default_client_scopes() if granted is None else granted
    if vocabulary.USAGE_RECORD in chosen - vocabulary.user_token_scopes():
        raise TokenError(db_errors.FORBIDDEN, SCOPE_RECORD_REFUSED, field="scopes")
    if granted is not None and (missing := vocabulary.ordered(chosen - granted)):
        raise TokenError(
            INSUFFICIENT_SCOPE,
            SCOPES_NOT_HELD.format(scopes=", ".join(missing)),
            field="scopes",
            details={"not_held": missing, "granted": vocabulary.ordered(granted)},
        )
    return vocabulary.ordered(chosen)


def _expiry(ttl_days: int | None, *, parent: AccessToken | None, now: datetime) -> datetime:
    """When the new token expires: ``ttl_days`` from now (default ACCESS_TOKEN_TTL_DAYS), at
    most the deployment's cap, and never after the parent (a default is cut to it, an explicit
    lifetime past it is refused)."""
    explicit = ttl_days is not None
    ttl = ttl_days if explicit else min(settings.ACCESS_TOKEN_TTL_DAYS, max_ttl_days())
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= max_ttl_days():
        raise TokenError(db_errors.INVALID, ttl_invalid(), field="ttl_days")
    expires_at = now + timedelta(days=ttl)
    if parent is not None and expires_at > parent.expires_at:
        if explicit:
            limit = parent.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            raise TokenError(
                db_errors.FORBIDDEN, TTL_PAST_PARENT.format(expires=limit), field="ttl_days"
            )
        expires_at = parent.expires_at
    if expires_at <= now:  # the parent expired between its authentication and now
        raise TokenError(db_errors.FORBIDDEN, PARENT_EXPIRED)
    return expires_at


def token_issue(
    *,
    user_id: int,
    name: str,
    scopes: Iterable[str] | None = (),
    ttl_days: int | None = None,
    parent: AccessToken | None = None,
    user_agent: str = "",
) -> IssuedToken:
    """Issue a new token for the user; return it with its raw value (shown once).

    ``scopes`` come from accounts.scopes (none: the client app's default, or the parent's).
    Expires after ``ttl_days`` (default ``settings.ACCESS_TOKEN_TTL_DAYS``, at most
    ``ACCESS_TOKEN_MAX_TTL_DAYS``). ``parent`` is the token that authorizes the creation (the
    API's; None from a signed-in page): the new token holds no scope it does not and expires no
    later. Raises TokenError and writes nothing when the account is unverified, inactive or
    deleted, the name, scopes or lifetime are refused, or the user already has
    MAX_ACTIVE_TOKENS active tokens.
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
        if parent is not None and parent.user_id != user_id:
            raise TokenError(db_errors.FORBIDDEN, PARENT_OTHER_ACCOUNT)
        name = clean_name(name)
        scopes = _clean_scopes(scopes, parent=parent)
        now = timezone.now()
        expires_at = _expiry(ttl_days, parent=parent, now=now)
        # Parallel requests of one user must not get past the limit together.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"access_tokens:user:{user_id}"],
            )
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
            expires_at=expires_at,
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
                **({"created_with_token": parent.pk} if parent is not None else {}),
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
