"""Finding demo accounts, and removing them with everything they own (``--reset-demo``).

A demo account has both marks: an address ``demo-<number>@example.com`` and ``"demo": true``
in its profile's preferences (which no page lets a user edit). Removal touches only rows that
belong to those accounts: every row whose user column (any foreign key to ``users``) names one
of them, found in the catalog so that a table added later is covered too, plus the audit
archive (which has no foreign keys). References that are ``ON DELETE SET NULL`` (an alert
acknowledged by a demo user) are set to NULL instead, as deleting the user would. Triggers are
off during the removal (``session_replication_role = replica``: no per-row counter updates on a
table that is being emptied anyway); what the foreign keys would have checked is checked
afterwards: no remaining row may point at a removed one.
"""

from __future__ import annotations

from witchcraft.demo.plan import EMAIL_REGEX, PROFILE_MARK

DEMO_USERS = f"""
SELECT u.id FROM public.users u JOIN public.user_profiles p ON p.user_id = u.id
 WHERE u.email ~ '{EMAIL_REGEX}' AND (p.preferences ->> '{PROFILE_MARK}')::boolean IS TRUE
"""  # noqa: S608 - built from constants

COUNT_USERS = f"""
SELECT count(*) FILTER (WHERE d.id IS NULL), count(d.id)
  FROM public.users u LEFT JOIN ({DEMO_USERS}) d ON d.id = u.id
"""  # noqa: S608 - built from constants

# Top-level foreign keys (not their copies on partitions) on one column that reference users.
USER_REFERENCES = """
SELECT c.conrelid::regclass::text, a.attname, c.confdeltype
  FROM pg_constraint c
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
 WHERE c.contype = 'f' AND c.confrelid = 'public.users'::regclass AND c.conparentid = 0
   AND cardinality(c.conkey) = 1
 ORDER BY 1, 2
"""

# Every top-level foreign key whose referenced table is one of %(tables)s, as an anti-join that
# counts the rows left pointing at nothing.
DANGLING_CHECKS = """
SELECT c.conname,
       format('SELECT count(*) FROM %%s child WHERE %%s AND NOT EXISTS '
              '(SELECT 1 FROM %%s parent WHERE %%s)',
              c.conrelid::regclass,
              string_agg(format('child.%%I IS NOT NULL', ca.attname), ' AND '),
              c.confrelid::regclass,
              string_agg(format('parent.%%I = child.%%I', pa.attname, ca.attname), ' AND '))
  FROM pg_constraint c
  CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(child_col, parent_col)
  JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_col
  JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_col
 WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid::regclass::text = ANY(%(tables)s)
 GROUP BY c.oid, c.conname, c.conrelid, c.confrelid
 ORDER BY c.conname
"""


def quote(identifier: str) -> str:
    """A column name as an SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


class ResetError(RuntimeError):
    """The demo accounts could not be removed without touching other rows."""


def count_users(cursor) -> tuple[int, int]:
    """(other users, demo users) in the database."""
    cursor.execute(COUNT_USERS)
    others, demo = cursor.fetchone()
    return others, demo


def remove_demo(cursor) -> dict[str, int]:
    """Remove the demo accounts and their rows; return the rows removed per table.

    Must run inside a transaction with triggers off (see the module); raises ResetError when a
    row outside the demo accounts pointed at one of the removed rows (the caller rolls back).
    """
    cursor.execute(f"CREATE TEMPORARY TABLE demo_reset_users ON COMMIT DROP AS {DEMO_USERS}")
    cursor.execute("ALTER TABLE pg_temp.demo_reset_users ADD PRIMARY KEY (id)")
    cursor.execute(USER_REFERENCES)
    references = cursor.fetchall()
    removed: dict[str, int] = {}
    for table, column, on_delete in references:
        if on_delete == "n":  # ON DELETE SET NULL
            # Table and column names come from the catalog (regclass text, attname).
            cursor.execute(
                f"UPDATE {table} SET {quote(column)} = NULL"  # noqa: S608
                f" WHERE {quote(column)} IN (SELECT id FROM pg_temp.demo_reset_users)"
            )
            continue
        cursor.execute(
            f"DELETE FROM {table} WHERE {quote(column)} IN"  # noqa: S608
            " (SELECT id FROM pg_temp.demo_reset_users)"
        )
        if cursor.rowcount:
            key = table.removeprefix("public.")
            removed[key] = removed.get(key, 0) + cursor.rowcount
    cursor.execute(
        "DELETE FROM public.audit_logs_archive WHERE user_id IN"
        " (SELECT id FROM pg_temp.demo_reset_users)"
        " OR actor_id IN (SELECT id FROM pg_temp.demo_reset_users)"
    )
    if cursor.rowcount:
        removed["audit_logs_archive"] = cursor.rowcount
    cursor.execute("DELETE FROM public.users WHERE id IN (SELECT id FROM pg_temp.demo_reset_users)")
    removed["users"] = cursor.rowcount
    cursor.execute("DROP TABLE pg_temp.demo_reset_users")
    _check_nothing_dangles(cursor, sorted({f"public.{name}" for name in removed}))
    return removed


def _check_nothing_dangles(cursor, tables: list[str]) -> None:
    names = [name.removeprefix("public.") for name in tables]
    cursor.execute(DANGLING_CHECKS, {"tables": names + tables})
    for constraint, query in cursor.fetchall():
        cursor.execute(query)
        (count,) = cursor.fetchone()
        if count:
            raise ResetError(
                f"removing the demo accounts would leave {count} row(s) pointing at them"
                f" ({constraint}); nothing was removed"
            )
