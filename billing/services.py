"""Writes for billing. Each calls the SQL function of its flow (DESIGN.md "Quotas").

The services run inside whatever row-level security context the caller set (a request's user,
or ``rls.service_context()``); the SQL functions check that the caller may act for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import DatabaseError, connection, transaction

from witchcraft import db_errors

# Why a reservation was refused (QuotaDecision.reason).
REASON_NO_QUOTA = "no_quota"
REASON_TOKENS_EXCEEDED = "tokens_exceeded"
REASON_COST_EXCEEDED = "cost_exceeded"

# QuotaError.code, and the messages of refusals the database words tersely.
INVALID = "invalid"
FORBIDDEN = "forbidden"
NOT_ALLOWED = "You may not act for this user."

_NUMERIC_OUT_OF_RANGE = "22003"


class QuotaError(Exception):
    """A quota call was refused: ``code`` is ``invalid`` (answer 400) or ``forbidden`` (403)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def quota_error_from(exc: DatabaseError) -> QuotaError | None:
    """Return the QuotaError a database refusal stands for, or None for a genuine failure."""
    state = db_errors.sqlstate(exc)
    if state == db_errors.INSUFFICIENT_PRIVILEGE:
        return QuotaError(FORBIDDEN, NOT_ALLOWED)
    if state in (db_errors.INVALID_PARAMETER, _NUMERIC_OUT_OF_RANGE):
        return QuotaError(INVALID, db_errors.message(exc))
    return None


@dataclass(frozen=True)
class QuotaDecision:
    """The answer of ``check_and_consume_quota``."""

    allowed: bool
    tokens_remaining: int
    cost_remaining: Decimal
    reason: str | None  # None when allowed, else one of the REASON_* constants


def quota_consume(*, user_id: int, tokens: int, cost: Decimal) -> QuotaDecision:
    """Reserve an estimate of ``tokens`` and ``cost`` against the user's quota.

    Returns a QuotaDecision: when allowed the estimate is reserved (pass it back to
    ``usage.services.usage_record`` as ``reserved_tokens`` / ``reserved_cost``); when refused
    nothing changed. Commit before calling the AI provider: an open transaction would hold the
    quota row locked for the whole call. Raises QuotaError for a negative estimate (invalid) or
    a caller who may not act for the user (forbidden).
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT allowed, tokens_remaining, cost_remaining, reason"
                " FROM check_and_consume_quota(p_user_id => %s::bigint, p_tokens => %s::bigint,"
                " p_cost => %s::numeric)",
                [user_id, tokens, cost],
            )
            allowed, tokens_remaining, cost_remaining, reason = cursor.fetchone()
    except DatabaseError as exc:
        refusal = quota_error_from(exc)
        if refusal is None:
            raise
        raise refusal from None
    return QuotaDecision(
        allowed=allowed,
        tokens_remaining=tokens_remaining,
        cost_remaining=cost_remaining,
        reason=reason,
    )


def quota_roll_forward(*, user_id: int) -> bool:
    """Move the user's quota to the current UTC month if its period has ended.

    Returns True when it rolled (used counters reset, limits from the current plan, the old
    period's alerts resolved), False otherwise. Raises QuotaError (forbidden).
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT roll_quota_forward(p_user_id => %s::bigint)", [user_id])
            return cursor.fetchone()[0]
    except DatabaseError as exc:
        refusal = quota_error_from(exc)
        if refusal is None:
            raise
        raise refusal from None
