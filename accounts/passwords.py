"""Changing a password: from ``/me/security/`` (the user, who knows the current one) and from
the admin's password form (staff); the reset by mail is in ``accounts.recovery``.

Both go through :func:`password_set`, which always ends the user's outstanding reset links and,
unless told otherwise, signs out their other devices and revokes their API tokens (OWASP ASVS
5.0 V7: end other sessions when an authentication factor changes). Service credentials are not
revoked: staff issue them to the backend, which acts for many users; they are not the user's.

Runs in the caller's row-level-security context: the database decides who may change whose
password (accounts/sql/0012: a superuser's only a superuser, someone else's only staff holding
accounts.change_user).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.urls import reverse

from accounts import audit, devices, recovery, sessions, tokens
from accounts.models import User
from witchcraft.platform import db_errors
from witchcraft.platform.mail import addressee, mail_send, site_url

# Messages shown to people (S105 mistakes words like "password" in them for secrets).
CURRENT_PASSWORD_WRONG = "That is not your current password."  # noqa: S105
PASSWORD_UNCHANGED = "The new password must differ from the current one."  # noqa: S105
TOO_MANY_ATTEMPTS = "Too many wrong passwords. Please wait 15 minutes and try again."
NOT_ALLOWED = "You may not change this account's password."

# Wrong current passwords per account before the form stops checking for a while: a stolen
# session must not become a way to guess the password itself.
MAX_WRONG_ATTEMPTS = 5
WRONG_ATTEMPTS_WINDOW = 15 * 60


class PasswordChangeError(db_errors.Refused):
    """The change was refused: ``code`` is ``invalid``, ``locked`` (too many wrong passwords) or
    ``forbidden`` (the caller may not); ``field`` names the input at fault (None: not an
    input's fault), ``messages`` say why (the validators may give several)."""

    def __init__(self, code: str, *messages: str, field: str | None = None):
        super().__init__(code, " ".join(messages), field=field)
        self.messages = list(messages)


def _attempts_key(user_id: int) -> str:
    return f"password_change:wrong:{user_id}"


@dataclass(frozen=True)
class Ended:
    """What a password change ended: still-valid reset links, other sessions, API tokens."""

    reset_links: int
    sessions: int
    tokens: int


def password_change(
    *,
    user_id: int,
    current_password: str,
    new_password: str,
    keep_session_key: str | None = None,
    user_agent: str = "",
    end_other_sessions: bool = True,
    revoke_tokens: bool = True,
) -> User:
    """Set a new password for a user who knows the current one; return the updated user.

    :func:`password_set` does the rest (``keep_session_key`` stays signed in). Raises
    PasswordChangeError (``current_password`` or ``new_password``) and writes nothing when
    refused.
    """
    key = _attempts_key(user_id)
    if cache.get(key, 0) >= MAX_WRONG_ATTEMPTS:
        raise PasswordChangeError(db_errors.LOCKED, TOO_MANY_ATTEMPTS, field="current_password")
    with transaction.atomic():
        user = User.objects.get(pk=user_id)
        if not user.check_password(current_password):
            cache.add(key, 0, timeout=WRONG_ATTEMPTS_WINDOW)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=WRONG_ATTEMPTS_WINDOW)
            raise PasswordChangeError(
                db_errors.INVALID, CURRENT_PASSWORD_WRONG, field="current_password"
            )
        if new_password == current_password:
            raise PasswordChangeError(db_errors.INVALID, PASSWORD_UNCHANGED, field="new_password")
        user, _ended = password_set(
            user_id=user_id,
            new_password=new_password,
            keep_session_key=keep_session_key,
            user_agent=user_agent,
            end_other_sessions=end_other_sessions,
            revoke_tokens=revoke_tokens,
        )
    cache.delete(key)
    return user


def password_set(
    *,
    user_id: int,
    new_password: str | None,
    keep_session_key: str | None = None,
    user_agent: str = "",
    end_other_sessions: bool = True,
    revoke_tokens: bool = True,
    by_staff: bool = False,
) -> tuple[User, Ended]:
    """Set the user's password (None: no usable password, sign-in by password disabled);
    return the updated user and what was ended.

    Every still-valid reset link of the user ends; with ``end_other_sessions`` every session
    but ``keep_session_key`` ends, with ``revoke_tokens`` every API token is revoked. Audited
    (``password_changed``, with those counts and ``by_staff``; never a secret) and the user is
    mailed a notice. Raises PasswordChangeError and writes nothing when the validators refuse
    the password (field ``new_password``) or the database refuses the caller (field None,
    NOT_ALLOWED).
    """
    with transaction.atomic():
        user = User.objects.get(pk=user_id)
        if new_password is None:
            user.set_unusable_password()
        else:
            try:
                validate_password(new_password, user)
            except ValidationError as exc:
                raise PasswordChangeError(
                    db_errors.INVALID, *exc.messages, field="new_password"
                ) from None
            user.set_password(new_password)
        try:
            with transaction.atomic():  # a refusal leaves the outer transaction usable
                user.save(update_fields=["password"])
                reset_links = recovery.password_reset_links_end(user_id=user.pk)
        except DatabaseError as exc:
            if db_errors.sqlstate(exc) == db_errors.INSUFFICIENT_PRIVILEGE:
                raise PasswordChangeError(db_errors.FORBIDDEN, NOT_ALLOWED) from None
            raise
        if end_other_sessions:
            ended_sessions = devices.sessions_end(
                user_id=user.pk, except_session_key=keep_session_key
            )
        else:
            ended_sessions = 0
            sessions.sessions_keep_signed_in(user=user, except_session_key=keep_session_key)
        ended = Ended(
            reset_links=reset_links,
            sessions=ended_sessions,
            tokens=tokens.tokens_revoke_all(user_id=user.pk) if revoke_tokens else 0,
        )
        audit.audit_event(
            audit.PASSWORD_CHANGED,
            user_id=user.pk,
            details={
                "reset_links_ended": ended.reset_links,
                "sessions_ended": ended.sessions,
                "tokens_revoked": ended.tokens,
                "by_staff": by_staff,
            },
            user_agent=user_agent,
        )
    mail_send(
        to=user.email,
        subject="Your password was changed",
        template="password_changed_by_user",
        context={
            "user": addressee(user),
            "by_staff": by_staff,
            "sessions_ended": ended.sessions,
            "tokens_revoked": ended.tokens,
            "tokens_link": site_url(reverse("accounts:me_tokens")),
            "reset_link": site_url(reverse("accounts:password_reset")),
        },
    )
    return user, ended
