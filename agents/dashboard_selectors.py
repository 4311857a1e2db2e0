"""Reads for the staff dashboard's agent pages: every session (staff are admins under RLS).

Lists are offset pages fetched one row beyond the page (no ``COUNT(*)`` over all sessions);
the stats of ``agent_session_stats`` are read for the page's sessions only, in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, QuerySet

from accounts.models import User
from agents.models import (
    AgentFeedback,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    VisibleAgentSessionStats,
)

PAGE_SIZE = 50
# The session page shows at most this many messages (and tool calls) per page of transcript.
TRANSCRIPT_PAGE_SIZE = 200
FEEDBACK_LIMIT = 100


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
class Transcript:
    session: AgentSession
    messages: list[AgentMessage]
    tool_calls: list[AgentToolCall]
    feedback: list[AgentFeedback]
    stats: VisibleAgentSessionStats | None
    page: int
    has_next: bool
    duration_seconds: float | None


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


def session_transcript(*, session_id: int, page: int = 1) -> Transcript:
    """One session with a page of its transcript (by position) and the tool calls of those
    messages' span; ``AgentSession.DoesNotExist`` if there is no such session."""
    session = _sessions().get(pk=session_id)
    start = (page - 1) * TRANSCRIPT_PAGE_SIZE
    messages = list(
        AgentMessage.objects.filter(session_id=session_id)
        .annotate(model_name=F("model__name"))
        .order_by("position")[start : start + TRANSCRIPT_PAGE_SIZE + 1]
    )
    has_next = len(messages) > TRANSCRIPT_PAGE_SIZE
    messages = messages[:TRANSCRIPT_PAGE_SIZE]
    tool_calls = list(
        AgentToolCall.objects.filter(session_id=session_id).order_by("started_at", "pk")[
            start : start + TRANSCRIPT_PAGE_SIZE
        ]
    )
    feedback = list(
        AgentFeedback.objects.filter(session_id=session_id).order_by("created_at", "pk")[
            :FEEDBACK_LIMIT
        ]
    )
    stats = VisibleAgentSessionStats.objects.filter(session_id=session_id).first()
    end = session.ended_at or session.last_activity_at
    return Transcript(
        session=session,
        messages=messages,
        tool_calls=tool_calls,
        feedback=feedback,
        stats=stats,
        page=page,
        has_next=has_next,
        duration_seconds=(end - session.started_at).total_seconds(),
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
    from usage.models import AIModel

    return list(AIModel.objects.order_by("name").values_list("pk", "name"))
