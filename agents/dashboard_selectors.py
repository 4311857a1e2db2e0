"""Reads for the staff dashboard's agent pages: every session (staff are admins under RLS).

Lists are offset pages fetched one row beyond the page (no ``COUNT(*)`` over all sessions);
the stats of ``agent_session_stats`` are read for the page's sessions only, in one query.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Q, QuerySet

from accounts.models import User
from agents.models import (
    AgentFeedback,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    VisibleAgentSessionStats,
)
from usage.models import AIModel, AIUsageRequest

PAGE_SIZE = 50
# The session page shows at most this many messages per page of transcript (with their tool
# calls, feedback and usage rows), and at most UNATTACHED_LIMIT tool calls tied to no message.
TRANSCRIPT_PAGE_SIZE = 200
UNATTACHED_LIMIT = 200


@dataclass(frozen=True)
class SessionFilters:
    email: str = ""
    active: bool | None = None
    model_id: int | None = None
    min_rating: Decimal | None = None


@dataclass(frozen=True)
class SessionRow:
    session: AgentSession
    avg_rating: Decimal | None


@dataclass(frozen=True)
class SessionList:
    rows: list[SessionRow]
    page: int
    has_next: bool
    unknown_user: bool  # the email filter names no user


@dataclass(frozen=True)
class MessageUsage:
    """One usage row behind a message: what the provider was asked and what it cost."""

    id: int  # the usage row (its page: the admin's usage request)
    request_id: str
    created_at: datetime
    provider: str
    model: str
    status: str
    error_code: str
    error_message: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost: Decimal
    latency_ms: int | None
    time_to_first_token_ms: int | None


@dataclass(frozen=True)
class TranscriptPage:
    """The rows of one page of a session's transcript, for agents.transcripts to shape."""

    session: AgentSession  # with its user, and model_name / provider_name
    stats: VisibleAgentSessionStats | None
    page: int
    page_size: int
    has_next: bool
    duration_seconds: float
    messages: list[AgentMessage]  # this page's, by position, with model_name / provider_name
    tool_calls: list[AgentToolCall]  # the calls of this page's messages
    unattached_tool_calls: list[AgentToolCall]  # calls tied to no message (first page only)
    more_unattached: bool  # more such calls than UNATTACHED_LIMIT
    feedback: list[AgentFeedback]  # on this page's messages, and on the whole session
    usage_of: dict[int, list[MessageUsage]]  # message id -> its usage rows

    @property
    def usage_total(self) -> int:
        return sum(len(rows) for rows in self.usage_of.values())


def _sessions() -> QuerySet[AgentSession]:
    return AgentSession.objects.select_related("user").annotate(model_name=F("model__name"))


def session_list(*, filters: SessionFilters, page: int = 1) -> SessionList:
    """One page of sessions, most recent activity first, with each one's average rating."""
    sessions = _sessions()
    if filters.email:
        # Emails are stored trimmed and lower-case: an exact lookup on the unique index, then
        # the sessions through their (user, ...) indexes.
        user_id = (
            User.objects.filter(email=filters.email.strip().lower())
            .values_list("pk", flat=True)
            .first()
        )
        if user_id is None:
            return SessionList(rows=[], page=1, has_next=False, unknown_user=True)
        sessions = sessions.filter(user_id=user_id)
    if filters.active is not None:
        sessions = sessions.filter(is_active=filters.active)
    if filters.model_id is not None:
        sessions = sessions.filter(model_id=filters.model_id)
    if filters.min_rating is not None:
        sessions = sessions.filter(
            pk__in=VisibleAgentSessionStats.objects.filter(
                avg_rating__gte=filters.min_rating
            ).values("session_id")
        )
    start = (page - 1) * PAGE_SIZE
    found = list(sessions.order_by("-last_activity_at", "-pk")[start : start + PAGE_SIZE + 1])
    has_next = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    ratings = {}
    if found:
        ratings = dict(
            VisibleAgentSessionStats.objects.filter(
                session_id__in=[s.pk for s in found]
            ).values_list("session_id", "avg_rating")
        )
    return SessionList(
        rows=[SessionRow(session=s, avg_rating=ratings.get(s.pk)) for s in found],
        page=page,
        has_next=has_next,
        unknown_user=False,
    )


def session_transcript(*, session_id: int, page: int = 1) -> TranscriptPage:
    """One session with a page of its transcript (TRANSCRIPT_PAGE_SIZE messages by position)
    and, for those messages, their tool calls, feedback and usage rows: seven queries whatever
    the page holds. ``AgentSession.DoesNotExist`` if there is no such session."""
    session = _sessions().annotate(provider_name=F("model__provider__name")).get(pk=session_id)
    start = (page - 1) * TRANSCRIPT_PAGE_SIZE
    messages = list(
        AgentMessage.objects.filter(session_id=session_id)  # the unique (session, position)
        .annotate(model_name=F("model__name"), provider_name=F("model__provider__name"))
        .order_by("position")[start : start + TRANSCRIPT_PAGE_SIZE + 1]
    )
    has_next = len(messages) > TRANSCRIPT_PAGE_SIZE
    messages = messages[:TRANSCRIPT_PAGE_SIZE]
    ids = [message.pk for message in messages]
    tool_calls = list(
        AgentToolCall.objects.filter(session_id=session_id, message_id__in=ids).order_by(
            "started_at", "pk"
        )
    )
    unattached: list[AgentToolCall] = []
    if page == 1:
        unattached = list(
            AgentToolCall.objects.filter(session_id=session_id, message__isnull=True).order_by(
                "started_at", "pk"
            )[: UNATTACHED_LIMIT + 1]
        )
    feedback = list(
        AgentFeedback.objects.filter(session_id=session_id)
        .filter(Q(message_id__in=ids) | Q(message__isnull=True))
        .order_by("created_at", "pk")
    )
    usage_of: dict[int, list[MessageUsage]] = defaultdict(list)
    rows = (
        AIUsageRequest.objects.filter(agent_session_id=session_id, agent_message_id__in=ids)
        .annotate(provider_name=F("provider__name"), model_name=F("model__name"))
        .order_by("created_at", "id")
        .values("agent_message_id", "provider_name", "model_name", *_USAGE_FIELDS)
    )
    for row in rows:
        message_id = row.pop("agent_message_id")
        usage_of[message_id].append(
            MessageUsage(provider=row.pop("provider_name"), model=row.pop("model_name"), **row)
        )
    stats = VisibleAgentSessionStats.objects.filter(session_id=session_id).first()
    end = session.ended_at or session.last_activity_at
    return TranscriptPage(
        session=session,
        stats=stats,
        page=page,
        page_size=TRANSCRIPT_PAGE_SIZE,
        has_next=has_next,
        duration_seconds=(end - session.started_at).total_seconds(),
        messages=messages,
        tool_calls=tool_calls,
        unattached_tool_calls=unattached[:UNATTACHED_LIMIT],
        more_unattached=len(unattached) > UNATTACHED_LIMIT,
        feedback=feedback,
        usage_of=dict(usage_of),
    )


_USAGE_FIELDS = (
    "id",
    "request_id",
    "created_at",
    "status",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "latency_ms",
    "time_to_first_token_ms",
)


def sessions_recent_for_user(*, user_id: int, limit: int) -> list[dict]:
    """The user's latest sessions, newest first (``agent_sessions_user_started``): each
    ``id, title, agent_name, model`` (the model's display name, "" without one) ``, is_active,
    started_at, last_activity_at, message_count, total_tokens, total_cost``."""
    rows = list(
        AgentSession.objects.filter(user_id=user_id)
        .order_by("-started_at", "-id")
        .values(
            "id",
            "title",
            "agent_name",
            "model__display_name",
            "is_active",
            "started_at",
            "last_activity_at",
            "message_count",
            "total_tokens",
            "total_cost",
        )[:limit]
    )
    for row in rows:
        row["model"] = row.pop("model__display_name") or ""
    return rows


def model_choices() -> list[tuple[int, str]]:
    """The models that sessions may name, for the filter (the catalog is small)."""
    return list(AIModel.objects.order_by("name").values_list("pk", "name"))
