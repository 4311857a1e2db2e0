"""Recognise PostgreSQL errors raised by the SQL functions, so services answer with a clear
domain error (and views with a 400) instead of a 500."""

from django.db import DatabaseError

INVALID_PARAMETER = "22023"
INSUFFICIENT_PRIVILEGE = "42501"
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
NO_DATA_FOUND = "P0002"


def sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of a database error (Django wraps psycopg's), or None."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    return getattr(cause, "sqlstate", None)


def constraint_name(exc: BaseException) -> str | None:
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    diag = getattr(cause, "diag", None)
    return getattr(diag, "constraint_name", None)


def message(exc: BaseException) -> str:
    """The server's primary message, without psycopg's context lines."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    diag = getattr(cause, "diag", None)
    return getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
