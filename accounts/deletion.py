"""``/me/delete/``: the owner deletes their account.

The deletion itself is one SQL function, ``delete_user_account()`` (accounts/sql/0010): the
account is anonymised and can no longer sign in, personal data and conversation content are
erased, the current subscription is canceled, and the billing, usage and audit history is kept
(the rows point at the account, which stays as a soft-deleted row). It writes the
``account_deleted`` audit row itself.

The current password confirms it is the owner. A wrong one counts like a failed sign-in (a
``login_failed`` row with ``{"step": "account_deletion"}``), so the account and IP lockouts of
accounts.login apply: a stolen session cannot guess the password here without limit. While
locked, even the right password is refused.
"""

from __future__ import annotations

import json

from django.db import DatabaseError, connection, transaction

from accounts import audit, login
from accounts.models import User
from witchcraft.platform import db_errors, rls
from witchcraft.platform.mail import mail_send

ACCOUNT_DELETED = "account_deleted"
STEP = "account_deletion"

# Messages shown to people (S105 mistakes words like "password" in them for secrets).
PASSWORD_WRONG = "That is not your current password."  # noqa: S105
TOO_MANY_ATTEMPTS = "Too many wrong passwords. Please wait 15 minutes and try again."
STAFF_CANNOT_DELETE = (
    "Staff accounts cannot be deleted here: an administrator removes them. Ask one to do it."
)
NOT_WHILE_IMPERSONATING = "An account cannot be deleted while impersonating its user."
NOT_ALLOWED = "This account cannot be deleted here. Please ask an administrator."
ALREADY_DELETED = "This account is already deleted."


class DeletionRefused(db_errors.Refused):
    """The deletion was refused and nothing was deleted; ``code`` says how to answer
    (``db_errors.INVALID``, ``FORBIDDEN``, ``LOCKED``), ``field`` names the input at fault (or
    None)."""

    LOCKED = db_errors.LOCKED


def _password_confirmed(*, user: User, password: str, ip: str, user_agent: str) -> None:
    """Check the owner's password under the sign-in lockout; raise DeletionRefused if wrong.

    The ``login_failed`` row of a wrong password is written in a savepoint of its own and
    stays when the refusal propagates (the request's transaction commits on a 4xx answer).
    """
    with rls.service_context():
        # The same locks as sign-in: parallel guesses cannot slip past the lockout.
        login.lock_attempts(email=user.email, ip=ip)
        locked = login.is_locked(user_id=user.pk, ip=ip)
    if locked:
        raise DeletionRefused(DeletionRefused.LOCKED, TOO_MANY_ATTEMPTS, field="password")
    if not user.check_password(password):
        with rls.service_context():
            audit.audit_event(
                audit.LOGIN_FAILED, user_id=user.pk, details={"step": STEP}, user_agent=user_agent
            )
        raise DeletionRefused(db_errors.INVALID, PASSWORD_WRONG, field="password")


def account_delete(
    *, user: User, password: str, impersonated: bool = False, ip: str = "", user_agent: str = ""
) -> dict[str, int]:
    """Delete the account of ``user`` (the signed-in owner, who typed ``password``); return
    what was erased, by kind (the details of the ``account_deleted`` audit row).

    Raises DeletionRefused, and deletes nothing, for a staff account, while impersonating, for
    a wrong password (counted as a failed sign-in) or while sign-in is locked. A confirmation
    is mailed to the address the account had, once the transaction commits.
    """
    if user.is_staff or user.is_superuser:
        raise DeletionRefused(db_errors.FORBIDDEN, STAFF_CANNOT_DELETE)
    if impersonated:
        raise DeletionRefused(db_errors.FORBIDDEN, NOT_WHILE_IMPERSONATING)
    if user.deleted_at is not None:
        raise DeletionRefused(db_errors.INVALID, ALREADY_DELETED)
    _password_confirmed(user=user, password=password, ip=ip, user_agent=user_agent)
    email, full_name = user.email, user.full_name
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT delete_user_account(p_user_id => %s)", [user.pk])
            summary = cursor.fetchone()[0]
    except DatabaseError as exc:
        refused = db_errors.refusal(exc, DeletionRefused, forbidden=NOT_ALLOWED)
        if refused is None:
            raise
        raise refused from None
    mail_send(
        to=email,
        subject="Your account is deleted",
        template="account_deleted",
        context={"full_name": full_name, "email": email},
    )
    return json.loads(summary) if isinstance(summary, str) else summary
