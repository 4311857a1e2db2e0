"""What staff do to an account from the user's 360° page (witchcraft/dashboard/user_actions.py):
revoke every API token, sign out every device, resend the verification mail, deactivate or
reactivate. Each is audited with the staff member as actor (the request's identity) and the user
as subject. Run in the staff member's row-level-security context (an admin); the Django
permission each needs is checked by the caller, and the database checks again where it holds the
rule (set_user_active: accounts.change_user, never a superuser's account unless a superuser,
never one's own).
"""

from __future__ import annotations

from django.db import connection, transaction

from accounts import audit, devices, tokens
from accounts.models import User
from witchcraft.platform import db_errors, deferred

# Audit events written here (set_user_active writes user_deactivated / user_reactivated).
TOKENS_REVOKED_BY_STAFF = "tokens_revoked_by_staff"
SESSIONS_ENDED_BY_STAFF = "sessions_ended_by_staff"
USER_DEACTIVATED = "user_deactivated"
USER_REACTIVATED = "user_reactivated"

NOT_YOURSELF = "You cannot deactivate or reactivate your own account."
NOT_ALLOWED = "You may not change this account."
ALREADY_VERIFIED = "This email address is already verified."


class AccountActionError(db_errors.Refused):
    """A staff action on an account was refused (``code``: invalid, forbidden)."""


def user_tokens_revoke_all(*, user_id: int, user_agent: str = "") -> int:
    """Revoke every active API token of the user; return how many. Audited (with the count)."""
    with transaction.atomic():
        revoked = tokens.tokens_revoke_all(user_id=user_id)
        audit.audit_event(
            TOKENS_REVOKED_BY_STAFF,
            user_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"revoked": revoked},
            user_agent=user_agent,
        )
    return revoked


def user_sessions_end(*, user_id: int, user_agent: str = "") -> int:
    """Sign the user out of every device (their sessions end); return how many. Audited."""
    with transaction.atomic():
        ended = devices.sessions_end(user_id=user_id)
        audit.audit_event(
            SESSIONS_ENDED_BY_STAFF,
            user_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"ended": ended},
            user_agent=user_agent,
        )
    return ended


def user_verification_resend(*, user: User, staff_id: int, ip: str = "") -> None:
    """Mail the user a new link confirming their address: the sign-up flow's own mail
    (``mail_email_verification``), whose job writes ``verification_sent`` with the staff member
    as actor. Raises AccountActionError (invalid) when the address is already verified."""
    if user.email_verified_at is not None:
        raise AccountActionError(db_errors.INVALID, ALREADY_VERIFIED)
    origin = deferred.origin()
    deferred.after_commit(
        deferred.MAIL_EMAIL_VERIFICATION,
        user_id=user.pk,
        ip=ip,
        request_id=origin["request_id"],
        actor_id=origin["actor_id"] or staff_id,
    )


def user_set_active(*, user_id: int, active: bool, staff_id: int) -> bool:
    """Deactivate (``active=False``) or reactivate the account through ``set_user_active``;
    return False when it already was so. Audited by the database (user_deactivated /
    user_reactivated). Raises AccountActionError: forbidden (one's own account, a superuser's
    for non-superusers, no accounts.change_user), invalid (no such account)."""
    if user_id == staff_id:
        raise AccountActionError(db_errors.FORBIDDEN, NOT_YOURSELF)
    with (
        db_errors.refusals_as(AccountActionError, forbidden=NOT_ALLOWED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT set_user_active(p_user_id => %s::bigint, p_active => %s)", [user_id, active]
        )
        return cursor.fetchone()[0]
