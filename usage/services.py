"""Writes for usage: recording AI requests through ``record_ai_usage`` (DESIGN.md).

The services run inside whatever row-level security context the caller set (a request's user,
or ``rls.service_context()``); the SQL function checks that the caller may act for the user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from billing import alerts
from witchcraft.platform import db_errors, rls

# How to answer a refusal (UsageError.code).
INVALID = db_errors.INVALID
FORBIDDEN = db_errors.FORBIDDEN
NOT_FOUND = db_errors.NOT_FOUND
CONFLICT = db_errors.CONFLICT

# Messages of refusals the database words tersely (22023 messages are passed on as they are:
# they name the fault, e.g. "model 7 is not a model of provider 2").
NOT_ALLOWED = "You may not record usage for this user."
UNKNOWN_REFERENCE = "A referenced provider, model, agent session or message does not exist."
# Only a concurrent second record for one agent message is a conflict: a retried request id is
# not an error (the first record's id is returned).
ALREADY_RECORDED = "This agent message already has a usage record."


class UsageError(db_errors.Refused):
    """Recording (or reading) usage was refused; ``code`` says how to answer."""


def refusals():
    """The database refusals of this domain's functions, raised as this module's error."""
    return db_errors.refusals_as(
        UsageError,
        forbidden=NOT_ALLOWED,
        unknown_reference=UNKNOWN_REFERENCE,
        conflict=ALREADY_RECORDED,
    )


def usage_record(
    *,
    user_id: int,
    provider_id: int,
    model_id: int,
    input_tokens: int,
    output_tokens: int,
    request_id: str | None = None,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
    latency_ms: int | None = None,
    time_to_first_token_ms: int | None = None,
    status: str = "success",
    error_code: str | None = None,
    agent_session_id: int | None = None,
    agent_message_id: int | None = None,
    reservation_id: int | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    cost: Decimal | None = None,
    error_message: str | None = None,
    access_token_id: int | None = None,
) -> int:
    """Record one AI request; return its usage id.

    One transaction adds the request, priced from the catalog's prices of its model, with its
    daily and monthly roll-ups, books the quota (the actual amount minus what the reservation
    ``reservation_id`` of ``billing.services.quota_consume`` held, which it settles) and raises
    quota alerts. A ``request_id`` recorded before returns the first record's id and changes
    nothing, so a client may retry safely. ``created_at`` places the row in time and ``cost``
    overrides the catalog's price (what a provider really billed, for imported history); both
    are for the service context only (imports, demo data, tests), never a client's. A request
    that did not succeed may carry the provider's ``error_code`` and ``error_message`` (stored
    with credentials redacted). ``access_token_id`` is the API token that sent the request
    (the caller's authenticated bearer token, never a client's field); it must be the user's.

    Raises UsageError: ``invalid`` (bad input, nothing written), ``forbidden`` (the caller may
    not record for the user, or set ``created_at`` or ``cost`` outside the service context),
    ``not_found``
    (the reservation is not the user's), ``conflict`` (the agent message already has a usage
    record; the reservation was settled or has expired).
    """
    with refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT record_ai_usage("
            "p_user_id => %s::bigint, p_provider_id => %s::integer,"
            " p_model_id => %s::integer, p_input_tokens => %s::integer,"
            " p_output_tokens => %s::integer,"
            " p_request_id => %s::text, p_cached_input_tokens => %s::integer,"
            " p_reasoning_tokens => %s::integer, p_latency_ms => %s::integer,"
            " p_time_to_first_token_ms => %s::integer, p_status => %s::text,"
            " p_error_code => %s::text, p_agent_session_id => %s::bigint,"
            " p_agent_message_id => %s::bigint, p_reservation_id => %s::bigint,"
            " p_metadata => %s::jsonb,"
            " p_created_at => %s::timestamptz, p_cost => %s::numeric,"
            " p_error_message => %s::text, p_access_token_id => %s::bigint),"
            " current_setting('app.alerts_raised', true) = 'true'",
            [
                user_id,
                provider_id,
                model_id,
                input_tokens,
                output_tokens,
                request_id,
                cached_input_tokens,
                reasoning_tokens,
                latency_ms,
                time_to_first_token_ms,
                status,
                error_code,
                agent_session_id,
                agent_message_id,
                reservation_id,
                json.dumps(metadata or {}),
                created_at,
                cost,
                error_message,
                access_token_id,
            ],
        )
        usage_id, alerts_raised = cursor.fetchone()
    if alerts_raised:
        alerts.notify_after_commit(user_id=user_id)
    return usage_id


# Batches ---------------------------------------------------------------------------------------

MAX_BATCH_RECORDS = 1000

# What happened to one record of a batch (RecordResult.status).
RECORDED = "recorded"
DUPLICATE = "duplicate"
REFUSED = "refused"

# Why a record was refused (RecordResult.error_code), as record_ai_usage_batch words it.
REFUSED_INVALID = "invalid"  # a bad value, an unknown or unavailable model or provider
REFUSED_NOT_FOUND = "not_found"  # an agent session, message or reservation not the user's
# The request_id was recorded with other content; the reservation was settled, has expired, or
# is named by an earlier record of the batch.
REFUSED_CONFLICT = "conflict"


@dataclass(frozen=True)
class RecordResult:
    """The answer of ``record_ai_usage_batch`` for one record."""

    index: int
    request_id: str | None
    status: str  # RECORDED, DUPLICATE or REFUSED
    usage_id: int | None  # the new row (recorded) or the first one (duplicate)
    total_tokens: int | None
    cost: Decimal | None
    error_code: str | None  # REFUSED_* when refused
    error_field: str | None
    error_message: str | None


def _json_default(value: Any) -> str:
    """Decimals travel as plain decimal strings (the SQL function reads them exactly)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def usage_record_batch(
    *,
    user_id: int,
    records: Sequence[Mapping[str, Any]],
    access_token_id: int | None = None,
) -> list[RecordResult]:
    """Record up to MAX_BATCH_RECORDS AI requests of the user set-wise; return one RecordResult
    per record, in order.

    Each record is a mapping with the API's field names (``request_id``, ``provider`` or
    ``provider_id``, ``model`` or ``model_id``, the token counts, ``reservation_id``,
    ``status``, ...; see ``usage/sql/0008_reservations_and_prices.sql``). Records are answered
    one by one: recorded, duplicate (the request_id was recorded before with the same content:
    nothing changes) or refused with a reason; the recorded ones are written together with
    their roll-ups and one quota booking. Every recorded row names ``access_token_id``, the API
    token that sent the batch (the caller's authenticated bearer token, which must be the
    user's; a record's own ``access_token_id`` key is ignored). Raises UsageError: ``invalid``
    (not a list, or too many records; nothing written), ``forbidden`` (the caller may not
    record for the user, or the token is not the user's).
    """
    payload = json.dumps(list(records), default=_json_default)
    with refusals(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT out_index, out_request_id, out_status, out_usage_id, out_total_tokens,"
            " out_cost, out_error_code, out_error_field, out_error_message,"
            " current_setting('app.alerts_raised', true) = 'true'"
            " FROM record_ai_usage_batch(p_user_id => %s::bigint, p_records => %s::jsonb,"
            " p_access_token_id => %s::bigint)",
            [user_id, payload, access_token_id],
        )
        rows = cursor.fetchall()
    if rows and rows[0][-1]:
        alerts.notify_after_commit(user_id=user_id)
    return [RecordResult(*row[:-1]) for row in rows]


def access_token_id_of(request) -> int | None:
    """The id of the API token that authenticated ``request`` (accounts.bearer sets
    ``request.access_token``), None for a service credential or a browser session: what the
    recording functions store as the row's ``access_token_id``."""
    token = getattr(request, "access_token", None)
    return token.pk if token is not None else None


def usage_totals_refresh_today() -> int:
    """Write today's all-users totals and active users, stamped now (the staff dashboard reads
    them for two minutes instead of every user's rows of today); the rows written. The job
    worker runs it every minute (usage/tasks.py, refresh_usage_today)."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.refresh_usage_today_totals()")
        return cursor.fetchone()[0]
