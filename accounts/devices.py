"""Signed-in devices: a user's browser sessions (``user_sessions``), listed and ended.

A session key is a bearer credential, so it never leaves the server: pages name a session by
its reference, the first 16 hex characters of the key's SHA-256, computed by the database.
Runs in the caller's row-level-security context: a user sees and ends their own sessions.
"""

from __future__ import annotations

import hashlib
import re

from django.contrib.auth import update_session_auth_hash
from django.db.models import CharField, Func

from accounts import audit
from accounts.models import UserSession
from witchcraft.platform import db_errors, rls

REF_LENGTH = 16
REF_PATTERN = re.compile(rf"^[0-9a-f]{{{REF_LENGTH}}}$")

SESSION_IS_CURRENT = "This is the device you are using now: sign out instead."
SESSION_NOT_FOUND = "That device is no longer signed in."


class SessionError(db_errors.Refused):
    """A session could not be ended: ``code`` is ``not_found`` (no session of the user by that
    reference) or ``conflict`` (it is the current one); ``message`` says why."""


class SessionRef(Func):
    """SQL: the reference of a session key (see :func:`session_reference`)."""

    template = f"left(encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex'), {REF_LENGTH})"
    output_field = CharField()


def session_reference(session_key: str) -> str:
    """Return the non-secret reference of a session key (the same as :class:`SessionRef`)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:REF_LENGTH]


def session_revoke(
    *, user_id: int, ref: str, current_session_key: str | None, user_agent: str = ""
) -> None:
    """End the user's session named ``ref`` (its row is deleted) and audit it.

    Raises SessionError: SESSION_IS_CURRENT for the session making the request (signing out
    is the way to end it), SESSION_NOT_FOUND when no session of the user has that reference
    (including one of another user, which row-level security hides).
    """
    if not REF_PATTERN.match(ref or ""):
        raise SessionError(db_errors.NOT_FOUND, SESSION_NOT_FOUND)
    if current_session_key and session_reference(current_session_key) == ref:
        raise SessionError(db_errors.CONFLICT, SESSION_IS_CURRENT)
    sessions = UserSession.objects.alias(ref=SessionRef("session_key")).filter(
        user_id=user_id, ref=ref
    )
    if current_session_key:
        sessions = sessions.exclude(session_key=current_session_key)
    ended = list(sessions.values("ip", "user_agent")[:2])
    if not ended:
        raise SessionError(db_errors.NOT_FOUND, SESSION_NOT_FOUND)
    sessions.delete()
    audit.audit_event(
        audit.SESSION_REVOKED,
        user_id=user_id,
        target_type="user_session",
        target_id=ref,
        details={"ip": ended[0]["ip"], "device": ended[0]["user_agent"]},
        user_agent=user_agent,
    )


def sessions_end(*, user_id: int, except_session_key: str | None = None) -> int:
    """End every session of the user but ``except_session_key``; return how many ended."""
    sessions = UserSession.objects.filter(user_id=user_id)
    if except_session_key:
        sessions = sessions.exclude(session_key=except_session_key)
    return sessions.delete()[0]


def session_renew(request, user) -> None:
    """After a password change: keep this device signed in under a new session key.

    ``update_session_auth_hash`` moves the session to a new key (and stores the new password's
    hash in it, so the session stays valid); the new row gets this device's details again.
    """
    update_session_auth_hash(request, user)
    UserSession.objects.filter(session_key=request.session.session_key).update(
        ip=rls.client_ip(request) or None,
        user_agent=audit.clean_text(request.headers.get("User-Agent", ""), 300),
    )
