"""The export's JSON document, produced section by section and row by row (see
``witchcraft.selfservice.export``). Runs inside the export's own row-level-security context."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import BooleanField, ExpressionWrapper, F, Q

from accounts import archive as audit_archive
from accounts.models import AccessToken, AuditLog, User, UserProfile, UserSession
from accounts.selectors import TOKEN_FIELDS
from agents.models import AgentFeedback, AgentMessage, AgentSession, AgentToolCall
from billing.models import PaymentHistory, UsageAlert, UserQuota, UserSubscription
from usage import archive as usage_archive
from usage.models import AIModel, AIProvider, AIUsageDaily, AIUsageMonthly, AIUsageRequest

FORMAT = "witchcraft-export"
VERSION = 1
# Rows fetched per round trip from a server-side cursor.
FETCH_ROWS = 2000
# Audit details naming another person (the staff member behind an impersonation).
HIDDEN_AUDIT_KEYS = frozenset({"staff_email"})

_USAGE_TOTALS = AIUsageDaily.COUNTERS


def _dumps(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _array(rows: Iterable[dict]) -> Iterator[str]:
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + "\n" + _dumps(row)
    yield "]"


def document(user_id: int) -> Iterator[str]:
    """The JSON document of the user's data, in pieces of text."""
    catalog = _Catalog()
    yield f'{{"format": {_dumps(FORMAT)}, "version": {VERSION}, "user_id": {user_id}'
    yield f', "generated_at": {_dumps(datetime.now(UTC))}'
    yield f', "account": {_dumps(_account(user_id))}'
    yield f', "profile": {_dumps(_profile(user_id))}'
    yield ', "subscriptions": '
    yield from _array(_subscriptions(user_id))
    yield f', "quota": {_dumps(_quota(user_id))}'
    yield ', "payments": '
    yield from _array(_payments(user_id))
    yield ', "usage_alerts": '
    yield from _array(_usage_alerts(user_id))
    yield ', "usage_daily": '
    yield from _array(_usage_daily(user_id, catalog))
    yield ', "usage_monthly": '
    yield from _array(_usage_monthly(user_id))
    yield ', "usage_requests": '
    yield from _array(_usage_requests(user_id, catalog))
    yield ', "agent_sessions": '
    yield from _agent_sessions(user_id, catalog)
    yield ', "access_tokens": '
    yield from _array(_access_tokens(user_id))
    yield ', "devices": '
    yield from _array(_devices(user_id))
    yield ', "audit_events": '
    yield from _array(_audit_events(user_id))
    yield "}\n"


def _stream(queryset) -> Iterator[dict]:
    """The rows of ``queryset`` through a server-side cursor."""
    return queryset.iterator(chunk_size=FETCH_ROWS)


class _Catalog:
    """Provider slugs and model names by id, read once. Row-level security shows the active
    catalog only: a retired model is exported by its id (its name is then null)."""

    def __init__(self):
        self.providers = dict(AIProvider.objects.values_list("id", "slug"))
        self.models = dict(AIModel.objects.values_list("id", "name"))

    def name(self, row: dict) -> dict:
        if "provider_id" in row:
            row["provider"] = self.providers.get(row["provider_id"])
        if "model_id" in row:
            row["model"] = self.models.get(row["model_id"])
        return row


def _account(user_id: int) -> dict:
    account = (
        User.objects.filter(pk=user_id)
        .values("id", "email", "full_name", "date_joined", "email_verified_at", "last_login")
        .get()
    )
    account["email_verified"] = account["email_verified_at"] is not None
    return account


def _profile(user_id: int) -> dict | None:
    return (
        UserProfile.objects.filter(user_id=user_id)
        .values(
            "display_name",
            "avatar_url",
            "company",
            "timezone",
            "locale",
            "preferences",
            "created_at",
            "updated_at",
        )
        .first()
    )


def _subscriptions(user_id: int) -> Iterator[dict]:
    return _stream(
        UserSubscription.objects.filter(user_id=user_id)
        .order_by("created_at", "id")
        .values(
            "id",
            "status",
            "billing_cycle",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "canceled_at",
            "payment_provider",
            "provider_customer_id",
            "provider_subscription_id",
            "created_at",
            "updated_at",
            tier_slug=F("tier__slug"),
            tier_name=F("tier__name"),
        )
    )


def _quota(user_id: int) -> dict | None:
    return (
        UserQuota.objects.filter(user_id=user_id)
        .values(
            "tokens_limit",
            "tokens_used",
            "cost_limit",
            "cost_used",
            "period_start",
            "period_end",
            "updated_at",
        )
        .first()
    )


def _payments(user_id: int) -> Iterator[dict]:
    return _stream(
        PaymentHistory.objects.filter(user_id=user_id)
        .order_by("created_at", "id")
        .values(
            "id",
            "subscription_id",
            "amount",
            "currency",
            "status",
            "description",
            "payment_provider",
            "provider_payment_id",
            "period_start",
            "period_end",
            "created_at",
        )
    )


def _usage_alerts(user_id: int) -> Iterator[dict]:
    return _stream(
        UsageAlert.objects.filter(user_id=user_id)
        .order_by("triggered_at", "id")
        .values(
            "id",
            "alert_type",
            "metric",
            "threshold_percent",
            "period_start",
            "value_at_trigger",
            "limit_at_trigger",
            "triggered_at",
            "notified_at",
            "acknowledged_at",
            "resolved_at",
        )
    )


def _usage_daily(user_id: int, catalog: _Catalog) -> Iterator[dict]:
    rows = (
        AIUsageDaily.objects.filter(user_id=user_id)
        .order_by("usage_date", "provider_id", "model_id")
        .values("usage_date", "provider_id", "model_id", *_USAGE_TOTALS)
    )
    return (catalog.name(row) for row in _stream(rows))


def _usage_monthly(user_id: int) -> Iterator[dict]:
    return _stream(
        AIUsageMonthly.objects.filter(user_id=user_id)
        .order_by("year", "month")
        .values("year", "month", *_USAGE_TOTALS)
    )


def _usage_requests(user_id: int, catalog: _Catalog) -> Iterator[dict]:
    """The archived rows (older than USAGE_ARCHIVE_AFTER_MONTHS), then the live ones."""
    live = (
        AIUsageRequest.objects.filter(user_id=user_id)
        .order_by("created_at", "id")
        .values(*usage_archive.REQUEST_FIELDS)
    )
    rows = chain(usage_archive.archived_usage_requests_of(user_id), _stream(live))
    return (catalog.name(row) for row in rows)


class _Children:
    """Rows of one child table ordered by session id, handed out session by session: the
    sessions and their children are read side by side (a merge), one cursor each."""

    def __init__(self, rows: Iterator[dict]):
        self._rows = rows
        self._head = next(self._rows, None)

    def of(self, session_id: int) -> Iterator[dict]:
        # Rows of sessions that are not the user's cannot be here (the insert policies check
        # the session's owner); skip any before this session rather than misfile them.
        while self._head is not None and self._head["session_id"] <= session_id:
            row, self._head = self._head, next(self._rows, None)
            if row["session_id"] == session_id:
                del row["session_id"]
                yield row


def _agent_sessions(user_id: int, catalog: _Catalog) -> Iterator[str]:
    sessions = _stream(
        AgentSession.objects.filter(user_id=user_id)
        .order_by("id")
        .values(
            "id",
            "title",
            "agent_name",
            "model_id",
            "is_active",
            "started_at",
            "last_activity_at",
            "ended_at",
            "message_count",
            "tool_call_count",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "total_cost",
            "metadata",
        )
    )
    messages = _Children(
        _stream(
            AgentMessage.objects.filter(user_id=user_id)
            .order_by("session_id", "position", "id")
            .values(
                "session_id",
                "id",
                "position",
                "role",
                "content",
                "input_tokens",
                "output_tokens",
                "model_id",
                "latency_ms",
                "created_at",
                "metadata",
            )
        )
    )
    tool_calls = _Children(
        _stream(
            AgentToolCall.objects.filter(user_id=user_id)
            .order_by("session_id", "id")
            .values(
                "session_id",
                "id",
                "message_id",
                "tool_name",
                "arguments",
                "result",
                "status",
                "error",
                "started_at",
                "completed_at",
                "duration_ms",
            )
        )
    )
    feedback = _Children(
        _stream(
            AgentFeedback.objects.filter(user_id=user_id)
            .order_by("session_id", "id")
            .values("session_id", "id", "message_id", "rating", "comment", "category", "created_at")
        )
    )
    yield "["
    for index, session in enumerate(sessions):
        # The session's own fields, then its three lists, written as they are read.
        head = _dumps(catalog.name(session))
        yield ("," if index else "") + "\n" + head[:-1] + ', "messages": '
        yield from _array(catalog.name(row) for row in messages.of(session["id"]))
        yield ', "tool_calls": '
        yield from _array(tool_calls.of(session["id"]))
        yield ', "feedback": '
        yield from _array(feedback.of(session["id"]))
        yield "}"
    yield "]"


def _access_tokens(user_id: int) -> Iterator[dict]:
    return _stream(
        AccessToken.objects.filter(user_id=user_id)
        .order_by("created_at", "id")
        .values(*TOKEN_FIELDS)
    )


def _devices(user_id: int) -> Iterator[dict]:
    return _stream(
        UserSession.objects.filter(user_id=user_id)
        .order_by("created_at")
        .values("ip", "user_agent", "created_at", "last_seen_at", "expire_date")
    )


def _audit_events(user_id: int) -> Iterator[dict]:
    """The archived events (older than AUDIT_COMPRESS_AFTER_DAYS), then the live ones."""
    live = (
        AuditLog.objects.filter(user_id=user_id)
        .annotate(
            by_staff=ExpressionWrapper(
                Q(actor_id__isnull=False) & ~Q(actor_id=user_id), output_field=BooleanField()
            )
        )
        .order_by("created_at", "id")
        .values(
            "id",
            "created_at",
            "event_type",
            "severity",
            "ip",
            "user_agent",
            "request_id",
            "target_type",
            "target_id",
            "details",
            "by_staff",
        )
    )
    for row in chain(audit_archive.archived_audit_events_of(user_id), _stream(live)):
        for key in ("actor_id", "user_id"):  # the archive's own columns
            row.pop(key, None)
        if isinstance(row["details"], dict):
            row["details"] = {k: v for k, v in row["details"].items() if k not in HIDDEN_AUDIT_KEYS}
        yield row
