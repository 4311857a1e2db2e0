"""Staff flags: ``users.is_staff`` and ``users.is_superuser`` change only through the SQL
function ``set_user_staff`` (the runtime role cannot write those columns), which only an active
superuser or the service context may call. The database audits every change
(``staff_flag_changed``, with the old and new values and the caller as actor)."""

from __future__ import annotations

from django.db import connection, transaction

from witchcraft.platform import db_errors

NOT_ALLOWED = "Only a superuser can change the staff flags."


class StaffFlagsRefused(db_errors.Refused):
    """set_user_staff refused the call (not a superuser, or no such user)."""


def user_set_staff(*, user_id: int, is_staff: bool, is_superuser: bool) -> bool:
    """Set the user's staff flags; return whether they changed.

    Raises StaffFlagsRefused when the caller may not, or the user does not exist.
    """
    with (
        db_errors.refusals_as(StaffFlagsRefused, forbidden=NOT_ALLOWED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT set_user_staff(p_user_id => %s, p_is_staff => %s, p_is_superuser => %s)",
            [user_id, is_staff, is_superuser],
        )
        return cursor.fetchone()[0]
