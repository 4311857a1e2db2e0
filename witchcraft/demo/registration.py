"""Demo people are registered the one way there is: ``create_user_with_profile``.

Before their history is generated, every person is registered by the SQL function, with the
triggers on, in one statement (the user, profile, quota and free subscription of the current
month, the ``user_created`` audit row). The load then dates those rows as the person's history
says: the generators write them into staging tables (:meth:`Registrations.table`), and each
batch's rows are applied with one UPDATE per table (:meth:`Registrations.apply`) before the
batch is rolled up. The free subscription made at sign-up is the first of the person's plans;
the ``user_created`` row is written again by the trail at the sign-up moment (in
``audit_logs_archive`` when that is more than 90 days ago), so registration's own row, dated
now, is removed.
"""

from __future__ import annotations

from witchcraft.demo import bulk
from witchcraft.demo.plan import Person

REGISTER = """
SELECT p.email, public.create_user_with_profile(p.email, %s, p.full_name)
  FROM unnest(%s::text[], %s::text[]) AS p(email, full_name)
"""
# The registration rows, and the column each is found by.
KEYS = {
    "users": "id",
    "user_profiles": "user_id",
    "user_quotas": "user_id",
    "user_subscriptions": "id",
}


class RegistrationMismatch(RuntimeError):
    """The load dated a different number of registration rows than registration made."""


def _staging(name: str) -> str:
    return f"pg_temp.demo_registered_{name}"


class Registrations:
    def __init__(self, cursor, loader: bulk.Loader):
        self.loader = loader
        for name in KEYS:
            # (A load earlier in the same transaction, as in tests, left its own.)
            cursor.execute(f"DROP TABLE IF EXISTS {_staging(name)}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE demo_registered_{name} ON COMMIT DROP"  # noqa: S608
                f" AS SELECT * FROM public.{name} WITH NO DATA"
            )

    def table(self, name: str, columns: tuple[str, ...]) -> bulk.Table:
        """The buffer of the dated rows of ``name`` (a registration table)."""
        return self.loader.table(name, columns, target=_staging(name))

    def apply(self, cursor) -> None:
        """Date the registration rows staged so far (one UPDATE per table); empty the staging."""
        for name, key in KEYS.items():
            table = self.loader.tables.get(_staging(name))
            if table is None:
                continue
            columns = [column for column in table.columns if column != key]
            targets = ", ".join(columns)
            values = ", ".join(f"s.{column}" for column in columns)
            cursor.execute(f"SELECT count(*) FROM {_staging(name)}")  # noqa: S608 - constants
            (staged,) = cursor.fetchone()
            cursor.execute(
                f"UPDATE public.{name} t SET ({targets}) = ROW({values})"  # noqa: S608
                f" FROM {_staging(name)} s WHERE t.{key} = s.{key}"
            )
            if cursor.rowcount != staged:
                raise RegistrationMismatch(
                    f"{name}: {staged} row(s) dated, {cursor.rowcount} made by registration"
                )
            cursor.execute(f"TRUNCATE {_staging(name)}")


def register(cursor, persons: list[Person], password_hash: str) -> None:
    """Register every person with ``create_user_with_profile`` (triggers on, whatever the
    caller turned off); set ``person.id`` and ``person.subscription_id`` (the free
    subscription made at sign-up)."""
    with bulk.bulk_settings(cursor, session_replication_role="origin"):
        cursor.execute(
            REGISTER,
            [password_hash, [p.email for p in persons], [p.full_name for p in persons]],
        )
        ids = dict(cursor.fetchall())
    user_ids = list(ids.values())
    cursor.execute(
        "SELECT user_id, id FROM public.user_subscriptions WHERE user_id = ANY(%s)", [user_ids]
    )
    subscriptions = dict(cursor.fetchall())
    for person in persons:
        person.id = ids[person.email]
        person.subscription_id = subscriptions[person.id]
    # Until it is dated, registration's subscription is not the current one: a person's later
    # plans may be loaded first (one current subscription per user).
    cursor.execute(
        "UPDATE public.user_subscriptions SET status = 'canceled' WHERE id = ANY(%s)",
        [list(subscriptions.values())],
    )
    # Written again by the trail, dated at sign-up.
    cursor.execute(
        "DELETE FROM public.audit_logs WHERE event_type = 'user_created' AND user_id = ANY(%s)",
        [user_ids],
    )
