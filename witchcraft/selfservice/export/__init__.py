"""``/me/export/``: a download of all the user's own data, as one JSON file.

The file is produced while it is sent (a streaming response): the raw usage rows and the
conversations are read through server-side cursors and written row by row
(``witchcraft.selfservice.export.writer``), so memory stays bounded whatever the account holds.
Sending happens after the view has returned, when the request's transaction is over, so the stream
opens its own transaction with the same row-level-security identity (the user, no admin
rights), and reads every section from one snapshot when it can (REPEATABLE READ, READ ONLY).
Every read also filters by the user's id.

Never exported: password and token hashes, session keys, the staff member behind a staff
action (only that staff acted), other people's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from accounts import archive as audit_archive
from accounts import audit
from accounts.models import AccessToken, AuditLog, User, UserProfile, UserSession
from agents.models import AgentFeedback, AgentMessage, AgentSession, AgentToolCall
from billing.models import PaymentHistory, UsageAlert, UserQuota, UserSubscription
from usage import archive as usage_archive
from usage.models import AIUsageDaily, AIUsageMonthly, AIUsageRequest
from witchcraft.platform import rls
from witchcraft.selfservice.export.writer import document

DATA_EXPORTED = "data_exported"
# Bytes per chunk sent.
CHUNK_BYTES = 64 * 1024

# What the file holds, in its order: (key, what it is), shown on the page too.
SECTIONS: list[tuple[str, str]] = [
    ("account", "your account: email address, name, when you joined, when you confirmed it"),
    ("profile", "your profile: display name, avatar, company, time zone, language"),
    ("subscriptions", "your plans over time, with the plan's name"),
    ("quota", "your limits and what you used in the current period"),
    ("payments", "your payment history"),
    ("usage_alerts", "the quota alerts you received"),
    ("usage_daily", "your AI usage per day, provider and model"),
    ("usage_monthly", "your AI usage per month"),
    (
        "usage_requests",
        "every AI request you made: tokens, cost, prices, latency, outcome (archived ones too)",
    ),
    ("agent_sessions", "your agent conversations with their messages, tool calls and feedback"),
    ("access_tokens", "your API tokens: name, prefix, scopes and dates (never the token)"),
    ("devices", "your signed-in devices: address, browser and dates"),
    ("audit_events", "the security events about your account (archived ones too)"),
]


@dataclass(frozen=True)
class DataExport:
    """An export about to be sent: its file name, the rows per section (counted when it was
    requested, as audited) and the stream of its bytes."""

    user_id: int
    filename: str
    counts: dict[str, int]
    identity: rls.Identity

    def chunks(self) -> Iterator[bytes]:
        """The JSON document, in chunks of about CHUNK_BYTES (see the module's docstring)."""
        return _buffered(_in_context(self.identity, self.user_id))


def export_counts(*, user_id: int) -> dict[str, int]:
    """The number of rows of each section of the user's export (conversations split into
    sessions, messages, tool calls and feedback)."""
    by_user = {
        "subscriptions": UserSubscription,
        "payments": PaymentHistory,
        "usage_alerts": UsageAlert,
        "usage_daily": AIUsageDaily,
        "usage_monthly": AIUsageMonthly,
        "usage_requests": AIUsageRequest,
        "agent_sessions": AgentSession,
        "agent_messages": AgentMessage,
        "agent_tool_calls": AgentToolCall,
        "agent_feedback": AgentFeedback,
        "access_tokens": AccessToken,
        "devices": UserSession,
        "audit_events": AuditLog,
    }
    counts = {
        "account": User.objects.filter(pk=user_id).count(),
        "profile": UserProfile.objects.filter(user_id=user_id).count(),
        "quota": UserQuota.objects.filter(user_id=user_id).count(),
    }
    for section, model in by_user.items():
        counts[section] = model.objects.filter(user_id=user_id).count()
    counts["usage_requests"] += usage_archive.archived_usage_count(user_id=user_id)
    counts["audit_events"] += audit_archive.archived_audit_count(user_id=user_id)
    return counts


def export_start(
    *, user_id: int, request_id: str = "", ip: str = "", user_agent: str = ""
) -> DataExport:
    """Audit the export (``data_exported``, details: the rows per section) and return it, ready
    to stream. Runs in the request's context, so the audit row commits with the request even
    if the download is interrupted."""
    counts = export_counts(user_id=user_id)
    audit.audit_event(
        DATA_EXPORTED,
        user_id=user_id,
        target_type="user",
        target_id=user_id,
        details={"counts": counts},
        user_agent=user_agent,
        # A bulk download of personal data: among the security events staff watch.
        severity="warning",
    )
    return DataExport(
        user_id=user_id,
        filename=f"witchcraft-export-{user_id}-{timezone.localdate():%Y%m%d}.json",
        counts=counts,
        identity=rls.Identity(user_id=user_id, request_id=request_id, ip=ip),
    )


def _buffered(parts: Iterable[str]) -> Iterator[bytes]:
    buffer: list[str] = []
    size = 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= CHUNK_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _in_context(identity: rls.Identity, user_id: int) -> Iterator[str]:
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            # The first statement of the transaction: one snapshot for every section.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with rls.identity_context(identity):
            yield from document(user_id)
