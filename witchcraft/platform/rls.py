"""The one place that sets the database identity (row-level security, DESIGN.md).

Every request runs inside ``transaction.atomic()`` as the runtime role ``witchcraft_app`` with
``app.user_id``, ``app.is_admin``, ``app.actor_id``, ``app.request_id`` and ``app.ip`` set for
that transaction only (``SET LOCAL``, witchcraft/platform/identity_sql.py). Commands and jobs use
:func:`service_context`. Authentication (session or token lookup) happens before, as the
migration role, or through SECURITY DEFINER functions.

Each context restores what it found when it exits: inside an outer transaction (a test's, or a
service context inside a request) a ``SET LOCAL`` would otherwise outlive the block.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from witchcraft.platform import clients, identity_sql, replica

logger = logging.getLogger(__name__)

APP_ROLE = "witchcraft_app"
_SETTINGS = identity_sql.IDENTITY_SETTINGS


class RLSContextError(RuntimeError):
    """A database identity was requested outside a transaction (SET LOCAL would do nothing)."""


@dataclass(frozen=True)
class Identity:
    """Who the database should believe is asking."""

    user_id: int | None = None
    is_admin: bool = False
    is_service: bool = False
    # May this request reserve quota and record usage for its user (auth.may_record_for)? Set
    # from the API credential's scopes and the deployment's USAGE_SELF_REPORTING; never for a
    # browser session.
    may_record: bool = False
    actor_id: int | None = None  # the staff member behind an impersonation, or a job's actor
    request_id: str = ""
    ip: str = ""

    def values(self) -> dict[str, str]:
        return {
            "app.user_id": "" if self.user_id is None else str(self.user_id),
            "app.is_admin": "true" if self.is_admin else "false",
            "app.is_service": "true" if self.is_service else "false",
            "app.may_record": "true" if self.may_record else "false",
            "app.actor_id": "" if self.actor_id is None else str(self.actor_id),
            "app.request_id": self.request_id,
            "app.ip": self.ip,
        }


def _apply(role: str | None, values: dict[str, str]) -> None:
    """The role (None: back to the login role) and the settings for the rest of the
    transaction, in one round trip."""
    with connection.cursor() as cursor:
        identity_sql.execute(cursor, identity_sql.set_local(role, values))


def _current() -> tuple[str | None, dict[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('role'), "
            + ", ".join("coalesce(current_setting(%s, true), '')" for _ in _SETTINGS),
            list(_SETTINGS),
        )
        role, *values = cursor.fetchone()
    return (None if role == "none" else role), dict(zip(_SETTINGS, values, strict=True))


@contextmanager
def identity_context(identity: Identity) -> Iterator[Identity]:
    """Run the block as ``witchcraft_app`` with ``identity``; restore the previous state after.

    Must be entered inside a transaction. An exception inside the block rolls back to the
    savepoint taken here, which also undoes the settings.
    """
    if not connection.in_atomic_block:
        raise RLSContextError("the database identity can only be set inside transaction.atomic()")
    previous_role, previous_values = _current()
    with transaction.atomic():
        _apply(APP_ROLE, identity.values())
        yield identity
        # After set_rollback(True) the savepoint's rollback restores the settings by itself
        # (and the transaction may be unusable until then).
        if not connection.needs_rollback:
            _apply(previous_role, previous_values)


@contextmanager
def transaction_identity(identity: Identity) -> Iterator[Identity]:
    """A transaction that runs as ``witchcraft_app`` with ``identity`` from start to end.

    The request's context: one statement sets the role and the settings, and the end of the
    transaction clears them, so there is nothing to read first and nothing to restore (four
    statements fewer than :func:`identity_context`). Inside a transaction already open it is
    :func:`identity_context` in a savepoint, which restores what it found.
    """
    if connection.in_atomic_block:
        with identity_context(identity):
            yield identity
        return
    with transaction.atomic():
        _apply(APP_ROLE, identity.values())
        yield identity


def user_identity(
    user, *, actor=None, request_id: str = "", ip: str = "", may_record: bool = False
) -> Identity:
    """The identity of a signed-in (or anonymous) user; staff are admins. ``may_record``: the
    request's credential may reserve quota and record usage for this user."""
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return Identity(
        user_id=user.pk if authenticated else None,
        is_admin=bool(authenticated and user.is_staff and user.is_active),
        may_record=bool(authenticated and may_record),
        actor_id=getattr(actor, "pk", None),
        request_id=request_id,
        ip=ip,
    )


def user_context(user, *, actor=None, request_id: str = "", ip: str = "", may_record: bool = False):
    """The context of a signed-in (or anonymous) user; staff are admins."""
    return identity_context(
        user_identity(user, actor=actor, request_id=request_id, ip=ip, may_record=may_record)
    )


def service_context(*, actor=None, request_id: str = "", ip: str = ""):
    """The context of a command or job: may act for any user, sees every row.

    Inside a request (sign-in, recovery), the request's id and client IP carry over, so audit
    rows written in it still say where they came from, and so does an actor already set (the
    staff member behind an impersonation outranks the ``actor`` given here, who is only the
    default). Work done after the response carries them over too (witchcraft.platform.deferred).
    """
    inherited = _current()[1] if connection.in_atomic_block else {}
    inherited_actor = inherited.get("app.actor_id")
    return identity_context(
        Identity(
            is_service=True,
            actor_id=int(inherited_actor) if inherited_actor else getattr(actor, "pk", actor),
            request_id=request_id
            or inherited.get("app.request_id")
            or f"job-{uuid.uuid4().hex[:12]}",
            ip=ip or inherited.get("app.ip", ""),
        )
    )


def current_identity() -> dict[str, str]:
    """The identity settings in force (empty outside a transaction), to carry elsewhere."""
    return _current()[1] if connection.in_atomic_block else {}


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or through the proxies in settings.TRUSTED_PROXIES
    the client their X-Forwarded-For names (witchcraft.platform.clients); "" when there is none.

    Sign-in and rate limits, audit rows (``app.ip``) and METRICS_ALLOWED_IPS all use it.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") or ""
    trusted = settings.TRUSTED_PROXIES
    if forwarded and not _warned and _untrusted_local_proxy(remote, trusted):
        _warn_untrusted_local_proxy(remote)
    return clients.client_address(remote, forwarded, trusted)


_LOCAL_PEERS = frozenset({"127.0.0.1", "::1"})
_warned = False


def _untrusted_local_proxy(remote: str, trusted: clients.TrustedProxies) -> bool:
    """Whether the peer is surely a proxy on this machine (loopback, or a unix socket) that
    TRUSTED_PROXIES does not name."""
    if not remote:
        return not trusted.unix_socket
    return remote in _LOCAL_PEERS and remote not in trusted


def _warn_untrusted_local_proxy(remote: str) -> None:
    """Once per process: a local proxy forwards clients, but TRUSTED_PROXIES does not name it,
    so every client has the proxy's address (and shares its sign-in and rate limits)."""
    global _warned
    _warned = True
    logger.warning(
        "X-Forwarded-For from %s ignored: it is not in TRUSTED_PROXIES, so every client "
        "behind that proxy shares its address (README, Deployment: Behind a proxy)",
        remote or "a unix socket",
    )


class RowLevelSecurityMiddleware:
    """Run each request in one transaction as the runtime role with the user's identity.

    Placed after AuthenticationMiddleware: the user is resolved first (as the migration role),
    then everything the view does is subject to the policies. A response with a 5xx status
    rolls the transaction back, since exceptions were already turned into responses.
    """

    # Paths that touch no user data and must answer even when the database does not
    # (/metrics reads its cross-user totals in its own service context).
    EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in self.EXEMPT_PATHS:
            return self.get_response(request)
        user = request.user
        _ = user.is_authenticated  # resolve the lazy user now, before switching role
        # The client's X-Request-ID only when it is a plausible id that no job could have made.
        request.request_id = clients.request_id(request.headers.get("X-Request-ID"))
        identity = user_identity(
            user,
            actor=getattr(request, "rls_actor", None),
            request_id=request.request_id,
            ip=client_ip(request),
            # Set by the API's credential check (accounts.bearer); absent for pages.
            may_record=getattr(request, "may_record", False),
        )
        request.rls_identity = identity  # analytics reads carry it to the replica
        wrote = False
        with transaction_identity(identity):
            response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True)
            else:
                wrote = replica.wrote_in_transaction(identity.user_id)
        if wrote:  # committed: the user's next pages must not read a replica behind it
            replica.remember_write(identity.user_id)
        response.setdefault("X-Request-ID", request.request_id)
        return response
