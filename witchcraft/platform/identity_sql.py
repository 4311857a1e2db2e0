"""The SQL that sets a transaction's database identity: ``SET LOCAL`` statements, never
``set_config()``.

A literal ``SET LOCAL app.user_id = '42'`` is what a distributed PostgreSQL (Citus, with
``citus.propagate_set_commands = 'local'``) forwards to the nodes where the policies run;
``set_config()`` calls are not forwarded, and the policies there would see no identity. The
values are quoted by psycopg (``psycopg.sql.Literal``); the names come from a fixed list.
"""

from __future__ import annotations

from psycopg import sql

# The settings the policies and the auth.* functions read (witchcraft/sql/functions/auth.*.sql).
IDENTITY_SETTINGS = (
    "app.user_id",
    "app.is_admin",
    "app.is_service",
    "app.may_record",
    "app.actor_id",
    "app.request_id",
    "app.ip",
)


def set_local(role: str | None, values: dict[str, str]) -> sql.Composed:
    """``SET LOCAL ROLE role`` (``RESET ROLE`` for None), then ``SET LOCAL name = 'value'`` for
    each identity setting in ``values``, as one string of statements (one round trip)."""
    unknown = set(values) - set(IDENTITY_SETTINGS)
    if unknown:
        raise ValueError(f"not an identity setting: {', '.join(sorted(unknown))}")
    statements = [
        sql.SQL("RESET ROLE")
        if role is None
        else sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role))
    ]
    statements += [
        sql.SQL("SET LOCAL {} = {}").format(sql.SQL(name), sql.Literal(value))
        for name, value in values.items()
    ]
    return sql.SQL("; ").join(statements)


def execute(cursor, statements: sql.Composed) -> None:
    """Run ``statements`` on a Django cursor (psycopg renders them against its connection)."""
    cursor.execute(statements.as_string(cursor.connection))
