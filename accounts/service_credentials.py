"""Service credentials: the bearer credentials of the backend that calls the AI providers.

Where Witchcraft pays for the provider calls, token counts reported by whoever made the call are
the one input the server cannot check, so only that backend may record usage and reserve quota,
for the user each request names (``Witchcraft-User: <user id>``, accounts.bearer). Staff issue
its credentials (the admin, or ``manage.py service_credentials``), every issue and revoke is
audited, and they can be revoked at once.

A raw credential is ``wcs_`` and 256 random bits from ``secrets``; it is shown once, when
issued. The database keeps its SHA-256 and its first characters; no audit row or log line
carries it. Issuing and revoking go through SQL functions that only an active staff member may
call (accounts/sql/0011); authentication through ``authenticate_service_credential``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import audit, tokens
from accounts import scopes as vocabulary
from accounts.models import ServiceCredential, User
from witchcraft.platform import db_errors, rls

RAW_PREFIX = "wcs_"  # a marker that makes leaked credentials easy to spot
PREFIX_LENGTH = 10

# The header naming the user a service request acts for, and its valid form (a users.id).
USER_HEADER = "Witchcraft-User"
_USER_ID = re.compile(r"^[1-9][0-9]{0,18}$")
_MAX_USER_ID = 2**63 - 1

SCOPES_INVALID = (
    "A service credential holds one or more of "
    + ", ".join(s for s in vocabulary.ALL if s in vocabulary.SERVICE_SCOPES)
    + " (never tokens.manage or account)."
)
TTL_INVALID = "A service credential lives between 1 and {max_days} days."
NOT_STAFF = "Only an active staff member may issue or revoke service credentials."


class ServiceCredentialError(db_errors.Refused):
    """Issuing or revoking was refused; ``field`` names the input at fault (or None)."""


@dataclass(frozen=True)
class IssuedCredential:
    """A credential just issued: ``raw`` is the only copy of the secret, to be shown once."""

    credential: ServiceCredential
    raw: str = field(repr=False)


@dataclass(frozen=True)
class Credential:
    """An authenticated service credential: what a request needs to know about it."""

    id: int
    scopes: frozenset[str]


def ttl_invalid() -> str:
    return TTL_INVALID.format(max_days=settings.SERVICE_CREDENTIAL_MAX_TTL_DAYS)


def _clean_scopes(scopes: Iterable[str] | None) -> list[str]:
    if isinstance(scopes, str | bytes):
        raise ServiceCredentialError(db_errors.INVALID, SCOPES_INVALID, field="scopes")
    chosen = set(scopes or vocabulary.SERVICE_SCOPES)
    if not all(isinstance(s, str) for s in chosen) or not chosen <= vocabulary.SERVICE_SCOPES:
        raise ServiceCredentialError(db_errors.INVALID, SCOPES_INVALID, field="scopes")
    return vocabulary.ordered(chosen)


def _clean_days(days: int | None) -> int:
    most = settings.SERVICE_CREDENTIAL_MAX_TTL_DAYS
    days = most if days is None else days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= most:
        raise ServiceCredentialError(db_errors.INVALID, ttl_invalid(), field="days")
    return days


def service_credential_issue(
    *,
    name: str,
    scopes: Iterable[str] | None = None,
    days: int | None = None,
    user_agent: str = "",
) -> IssuedCredential:
    """Issue a service credential; return it with its raw value (shown once).

    ``scopes`` from SERVICE_SCOPES (default: all of them); ``days`` of life (default and most:
    ``settings.SERVICE_CREDENTIAL_MAX_TTL_DAYS``). Runs in the caller's context: a staff member
    in their own, or a service context whose actor is one (the operator command). The database
    records that staff member as its creator and audits it (``service_credential_created``).
    Raises ServiceCredentialError and writes nothing when an input is refused or the caller is
    not an active staff member.
    """
    try:
        name = tokens.clean_name(name)
    except tokens.TokenError as refused:
        raise ServiceCredentialError(refused.code, refused.message, field="name") from None
    chosen = _clean_scopes(scopes)
    expires_at = timezone.now() + timedelta(days=_clean_days(days))
    raw = RAW_PREFIX + secrets.token_urlsafe(32)
    credential_id = _staff_call(
        "SELECT create_service_credential(p_name => %s, p_token_hash => %s, p_prefix => %s,"
        " p_scopes => %s::text[], p_expires_at => %s, p_user_agent => %s)",
        [name, tokens.digest(raw), raw[:PREFIX_LENGTH], chosen, expires_at, _agent(user_agent)],
    )
    return IssuedCredential(credential=ServiceCredential.objects.get(pk=credential_id), raw=raw)


def service_credential_revoke(*, credential_id: int, user_agent: str = "") -> bool:
    """Revoke the credential; return whether it was revoked now (False: unknown or already
    revoked). Staff only, audited (``service_credential_revoked``) with the staff member as
    actor. Raises ServiceCredentialError when the caller is not an active staff member."""
    return _staff_call(
        "SELECT revoke_service_credential(p_credential_id => %s, p_user_agent => %s)",
        [credential_id, _agent(user_agent)],
    )


def _agent(user_agent: str) -> str:
    return audit.clean_text(user_agent, 300)


def _staff_call(sql: str, params: list):
    """Run one of the staff-only SQL functions; return its value. Its refusals become
    ServiceCredentialError."""
    with (
        db_errors.refusals_as(ServiceCredentialError, forbidden=NOT_STAFF),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def service_credential_authenticate(*, raw: str) -> Credential | None:
    """The credential for a good raw value, or None (unknown, revoked, expired: answer 401).
    Records its last use at most once a minute. Works before anyone is known, inside a
    request's context or outside any transaction."""
    if (
        not isinstance(raw, str)
        or not raw.startswith(RAW_PREFIX)
        or len(raw) > tokens.RAW_MAX_LENGTH
    ):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT out_credential_id, out_scopes"
            " FROM authenticate_service_credential(p_token_hash => %s)",
            [tokens.digest(raw)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Credential(id=row[0], scopes=vocabulary.effective_scopes(row[1], service=True))


def parse_user_header(value: str | None) -> int | None:
    """The user id a ``Witchcraft-User`` header names, or None when it is absent or malformed."""
    if value is None or not _USER_ID.match(value.strip()):
        return None
    user_id = int(value.strip())
    return user_id if user_id <= _MAX_USER_ID else None


def acting_user(user_id: int) -> User | None:
    """The account a service request acts for: it must exist, be active and not deleted.
    Read as the service (the request's identity is not set yet), outside a transaction as the
    owner, inside one in a service context."""
    accounts = User.objects.filter(pk=user_id, is_active=True, deleted_at__isnull=True)
    if not connection.in_atomic_block:
        return accounts.first()
    with transaction.atomic(), rls.service_context():
        return accounts.first()
