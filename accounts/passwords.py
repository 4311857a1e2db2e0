"""Changing a password from ``/me/security/`` (the reset by mail is in ``accounts.recovery``).

Runs in the signed-in user's row-level-security context.
"""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from accounts import audit, devices
from accounts.models import User
from witchcraft.mail import addressee, mail_send, site_url

# Messages shown to people (S105 mistakes words like "password" in them for secrets).
CURRENT_PASSWORD_WRONG = "That is not your current password."  # noqa: S105
PASSWORD_UNCHANGED = "The new password must differ from the current one."  # noqa: S105
TOO_MANY_ATTEMPTS = "Too many wrong passwords. Please wait 15 minutes and try again."

# Wrong current passwords per account before the form stops checking for a while: a stolen
# session must not become a way to guess the password itself.
MAX_WRONG_ATTEMPTS = 5
WRONG_ATTEMPTS_WINDOW = 15 * 60


class PasswordChangeError(Exception):
    """The change was refused; ``field`` names the input at fault, ``messages`` say why."""

    def __init__(self, field: str, *messages: str):
        super().__init__(" ".join(messages))
        self.field = field
        self.messages = list(messages)


def _attempts_key(user_id: int) -> str:
    return f"password_change:wrong:{user_id}"


def password_change(
    *,
    user_id: int,
    current_password: str,
    new_password: str,
    keep_session_key: str | None = None,
    user_agent: str = "",
) -> User:
    """Set a new password for a user who knows the current one; return the updated user.

    Every other session of the user ends (``keep_session_key`` stays), the change is audited
    and a notice is mailed. Raises PasswordChangeError (``current_password`` or
    ``new_password``) and writes nothing when refused.
    """
    key = _attempts_key(user_id)
    if cache.get(key, 0) >= MAX_WRONG_ATTEMPTS:
        raise PasswordChangeError("current_password", TOO_MANY_ATTEMPTS)
    with transaction.atomic():
        user = User.objects.get(pk=user_id)
        if not user.check_password(current_password):
            cache.add(key, 0, timeout=WRONG_ATTEMPTS_WINDOW)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=WRONG_ATTEMPTS_WINDOW)
            raise PasswordChangeError("current_password", CURRENT_PASSWORD_WRONG)
        if new_password == current_password:
            raise PasswordChangeError("new_password", PASSWORD_UNCHANGED)
        try:
            validate_password(new_password, user)
        except ValidationError as exc:
            raise PasswordChangeError("new_password", *exc.messages) from None
        user.set_password(new_password)
        user.save(update_fields=["password"])
        ended = devices.sessions_end(user_id=user.pk, except_session_key=keep_session_key)
        audit.audit_event(
            audit.PASSWORD_CHANGED,
            user_id=user.pk,
            details={"sessions_ended": ended},
            user_agent=user_agent,
        )
    cache.delete(key)
    mail_send(
        to=user.email,
        subject="Your password was changed",
        template="password_changed_by_user",
        context={
            "user": addressee(user),
            "sessions_ended": ended,
            "tokens_link": site_url(reverse("accounts:me_tokens")),
            "reset_link": site_url(reverse("accounts:password_reset")),
        },
    )
    return user
