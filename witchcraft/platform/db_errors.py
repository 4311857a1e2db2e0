"""Recognise PostgreSQL errors raised by the SQL functions, so services answer with a clear
domain error (and views with a 400) instead of a 500."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError

INVALID_PARAMETER = "22023"
INSUFFICIENT_PRIVILEGE = "42501"
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
NO_DATA_FOUND = "P0002"
# The project's own SQLSTATEs for refusals a function words itself: "not found" (nothing of the
# caller's by that id) and "conflict" (the thing is in another state: settled, expired).
REFUSED_NOT_FOUND = "WC404"
REFUSED_CONFLICT = "WC409"


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


NUMERIC_OUT_OF_RANGE = "22003"

# Refused.code, the one vocabulary of refusals: how a page or the API answers is in one table,
# witchcraft.platform.refusals.ANSWERS.
INVALID = "invalid"  # the input is wrong
FORBIDDEN = "forbidden"  # the caller may not
NOT_FOUND = "not_found"  # nothing of the caller's by that id
CONFLICT = "conflict"  # the thing is in another state
LOCKED = "locked"  # too many attempts: wait and try again
INSUFFICIENT_SCOPE = "insufficient_scope"  # a token asks for more than the token creating it has
CODES = (INVALID, FORBIDDEN, NOT_FOUND, CONFLICT, LOCKED, INSUFFICIENT_SCOPE)


class Refused(Exception):
    """A refused call, from a SQL function or a domain's own check: ``code`` (one of CODES)
    says how to answer, ``message`` why (``messages`` when there are several), ``field`` the
    input at fault (or None), and ``column`` the column a SQL function named (RAISE ... USING
    COLUMN). ``details``: what an API answer adds (see refusals.refusal_details), or None."""

    column: str | None = None
    details: dict | None = None

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.messages = [message]
        self.field = field


def refusal(
    exc: DatabaseError,
    error_class: type[Refused] = Refused,
    *,
    forbidden: str,
    unknown_reference: str | None = None,
    conflict: str | None = None,
) -> Refused | None:
    """Return the refusal a database error stands for, or None for a genuine failure.

    Invalid parameters (22023, 22003) keep the server's message: the functions word them to
    name the fault.
    """
    state = sqlstate(exc)
    if state == INSUFFICIENT_PRIVILEGE:
        return error_class(FORBIDDEN, forbidden)
    if state in (INVALID_PARAMETER, NUMERIC_OUT_OF_RANGE):
        return error_class(INVALID, message(exc))
    if state in (REFUSED_NOT_FOUND, REFUSED_CONFLICT):
        refused = error_class(NOT_FOUND if state == REFUSED_NOT_FOUND else CONFLICT, message(exc))
        cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
        refused.column = getattr(getattr(cause, "diag", None), "column_name", None)
        return refused
    if state == FOREIGN_KEY_VIOLATION and unknown_reference:
        return error_class(INVALID, unknown_reference)
    if state == UNIQUE_VIOLATION and conflict:
        return error_class(CONFLICT, conflict)
    return None


@contextmanager
def refusals_as(error_class: type[Refused], **messages: str) -> Iterator[None]:
    """Turn the database's refusals inside the block into ``error_class`` (see refusal())."""
    try:
        yield
    except DatabaseError as exc:
        refused = refusal(exc, error_class, **messages)
        if refused is None:
            raise
        raise refused from None
