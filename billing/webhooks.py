"""The payment provider's webhooks: a Stripe-style signature checked, then the event applied
once by ``apply_billing_event`` (billing/sql/0005).

The signature header is ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` where
each ``v1`` is HMAC-SHA256 over ``"<t>." + body`` with the shared secret
(``BILLING_WEBHOOK_SECRET``). A timestamp more than ``BILLING_WEBHOOK_TOLERANCE_SECONDS`` (300)
away from now is refused, so a captured delivery cannot be replayed later; a replay within the
window carries an event id already applied and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import DatabaseError, connection, transaction

from billing import selectors
from witchcraft.platform import db_errors, rls
from witchcraft.platform.api_types import storable_json

SIGNATURE_HEADER = "Stripe-Signature"
MAX_BODY_BYTES = 256 * 1024
MAX_DEPTH = 32

# Outcomes of apply_billing_event.
APPLIED = "applied"
DUPLICATE = "duplicate"

# Refusals (WebhookRefused.message).
NO_SIGNATURE = "The request carries no valid signature header."
BAD_SIGNATURE = "The signature does not match the body."
STALE = "The signature's timestamp is outside the tolerance."
NOT_JSON = "The body is not an event: JSON with id, type, created and data.object expected."
NOT_KNOWN_YET = "The event names a subscription not known yet: retry later."
TOO_LARGE = "The body is too large."


class WebhookRefused(db_errors.Refused):
    """The delivery was refused: ``code`` is ``invalid`` (a bad signature or body) or
    ``conflict`` (retry later), ``reason`` the error code the provider is answered (its logs
    show it), ``field`` the part of the delivery at fault (the signature header, the body)."""

    def __init__(self, code: str, message: str, *, reason: str, field: str | None = None):
        super().__init__(code, message, field=field)
        self.reason = reason


def _bad_signature(message: str, reason: str = "bad_signature") -> WebhookRefused:
    return WebhookRefused(db_errors.INVALID, message, reason=reason, field=SIGNATURE_HEADER)


def _not_an_event(message: str = NOT_JSON) -> WebhookRefused:
    return WebhookRefused(db_errors.INVALID, message, reason="invalid", field="body")


def clock() -> float:
    """Seconds since the epoch: the one clock the signature check reads (a test sets it)."""
    return time.time()


def signature_header(*, payload: bytes, secret: str, timestamp: int) -> str:
    """The header a provider sends with ``payload`` signed at ``timestamp`` (for tests and for
    operators checking their set-up)."""
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    *, payload: bytes, header: str, secret: str, tolerance: int, now: float | None = None
) -> int:
    """Check ``header`` against ``payload``; return its timestamp. Raises WebhookRefused
    (invalid)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures or not secret:
        raise _bad_signature(NO_SIGNATURE)
    if abs((clock() if now is None else now) - timestamp) > tolerance:
        raise _bad_signature(STALE, reason="stale_signature")
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise _bad_signature(BAD_SIGNATURE)
    return timestamp


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: datetime
    object: dict


def event_parse(payload: bytes) -> Event:
    """Read the event out of a verified body. Raises WebhookRefused (invalid) for anything
    else."""
    try:
        data = json.loads(payload)
        event = Event(
            id=data["id"],
            type=data["type"],
            created=datetime.fromtimestamp(data["created"], tz=UTC),
            object=data["data"]["object"],
        )
        # Text PostgreSQL can store: no NUL, no lone surrogate (json.loads makes both).
        storable_json(data, max_bytes=MAX_BODY_BYTES, max_depth=MAX_DEPTH)
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise _not_an_event() from None
    if not (
        isinstance(event.id, str)
        and 0 < len(event.id) <= 255
        and isinstance(event.type, str)
        and 0 < len(event.type) <= 100
        and isinstance(event.object, dict)
    ):
        raise _not_an_event()
    return event


@dataclass(frozen=True)
class EventResult:
    outcome: str  # APPLIED, DUPLICATE or "ignored: <why>"
    user_id: int | None
    subscription_id: int | None


def event_apply(*, provider: str, event: Event) -> EventResult:
    """Apply ``event`` in the service context, once. Raises WebhookRefused (conflict) when it names
    a subscription whose checkout has not arrived yet (the provider retries); nothing is
    written then."""
    try:
        with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT outcome, user_id, subscription_id FROM apply_billing_event("
                "p_provider => %s, p_event_id => %s, p_event_type => %s,"
                " p_event_created => %s, p_object => %s::jsonb)",
                [provider, event.id, event.type, event.created, json.dumps(event.object)],
            )
            result = EventResult(*cursor.fetchone())
    except DatabaseError as exc:
        if db_errors.sqlstate(exc) == db_errors.NO_DATA_FOUND:
            raise WebhookRefused(db_errors.CONFLICT, NOT_KNOWN_YET, reason="retry") from None
        if db_errors.sqlstate(exc) in (db_errors.INVALID_PARAMETER, db_errors.CHECK_VIOLATION):
            raise _not_an_event(db_errors.message(exc)) from None
        raise
    if result.outcome == APPLIED and result.user_id is not None:
        # The plan may have changed: its rate limit is cached for a minute.
        transaction.on_commit(lambda: selectors.requests_per_minute_forget(user_id=result.user_id))
    return result
