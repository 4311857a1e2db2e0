"""Reads for agents: a user's sessions (keyset pages), one session with everything in it.

Like the services, every read runs in the caller's row-level-security context and also names
``user_id``: a row that is not the user's is not found (``DoesNotExist``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from agents.models import (
    AgentFeedback,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    VisibleAgentSessionStats,
)
from agents.services import INVALID, AgentError
from usage.models import AIUsageRequestKey

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# A session's detail carries at most this many of its latest messages, tool calls and feedback.
DETAIL_LIMIT = 500
BAD_CURSOR = "Not a cursor of this list: pass next_cursor as it was returned."


@dataclass(frozen=True)
class SessionPage:
    items: list[AgentSession]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class SessionDetail:
    session: AgentSession
    messages: list[AgentMessage]  # the latest DETAIL_LIMIT, by position
    messages_truncated: bool  # earlier messages exist beyond DETAIL_LIMIT
    tool_calls: list[AgentToolCall]  # the latest DETAIL_LIMIT, oldest first
    feedback: list[AgentFeedback]  # the latest DETAIL_LIMIT, oldest first
    stats: VisibleAgentSessionStats | None  # last refresh of agent_session_stats, if any


def _sessions(*, user_id: int) -> QuerySet[AgentSession]:
    # model_name is None when the session names no model, or one the caller cannot see
    # (deactivated since): reading session.model instead would fail for the latter.
    return AgentSession.objects.filter(user_id=user_id).annotate(model_name=F("model__name"))


def _messages(*, user_id: int) -> QuerySet[AgentMessage]:
    usage_id = AIUsageRequestKey.objects.filter(agent_message_id=OuterRef("pk")).values("usage_id")[
        :1
    ]
    return AgentMessage.objects.filter(user_id=user_id).annotate(
        model_name=F("model__name"), usage_id=Subquery(usage_id)
    )


def encode_cursor(session: AgentSession) -> str:
    raw = f"{session.last_activity_at.isoformat()}|{session.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (last_activity_at, id) a cursor stands for; AgentError (field ``cursor``) if bad."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, pk = raw.partition("|")
        last_activity_at, session_id = datetime.fromisoformat(moment), int(pk)
    except (ValueError, binascii.Error):
        raise AgentError(INVALID, BAD_CURSOR, field="cursor") from None
    if last_activity_at.tzinfo is None or not 0 < session_id < 2**63:
        raise AgentError(INVALID, BAD_CURSOR, field="cursor")
    return last_activity_at, session_id


def sessions_page(
    *,
    user_id: int,
    active: bool | None = None,
    limit: int = PAGE_SIZE,
    cursor: str | None = None,
) -> SessionPage:
    """One page of the user's sessions, most recent activity first (ties: newest id first).

    Keyset pagination on (last_activity_at, id): pass the page's ``next_cursor`` to get the
    next one. One query per page whatever its size. A session that gets a new message while a
    client pages moves to the front, so it may be missed by that walk (or seen twice).
    """
    sessions = _sessions(user_id=user_id)
    if active is not None:
        sessions = sessions.filter(is_active=active)
    return _keyset_page(sessions, limit=limit, cursor=cursor)


def sessions_search(
    *,
    user_id: int,
    title_contains: str = "",
    active: bool | None = None,
    limit: int = PAGE_SIZE,
    cursor: str | None = None,
) -> SessionPage:
    """One page of the user's sessions whose title contains ``title_contains`` (any case;
    empty: every session), most recent activity first, as :func:`sessions_page` pages them.

    One query per page. Raises AgentError (field ``cursor``) for a cursor it did not make.
    """
    sessions = _sessions(user_id=user_id)
    if title_contains:
        sessions = sessions.filter(title__icontains=title_contains)
    if active is not None:
        sessions = sessions.filter(is_active=active)
    return _keyset_page(sessions, limit=limit, cursor=cursor)


def _keyset_page(
    sessions: QuerySet[AgentSession], *, limit: int, cursor: str | None
) -> SessionPage:
    """The page of ``sessions`` after ``cursor`` on (last_activity_at, id), newest first."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if cursor:
        last_activity_at, session_id = decode_cursor(cursor)
        sessions = sessions.filter(
            Q(last_activity_at__lt=last_activity_at)
            | Q(last_activity_at=last_activity_at, pk__lt=session_id)
        )
    items = list(sessions.order_by("-last_activity_at", "-pk")[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return SessionPage(items=items, next_cursor=encode_cursor(items[-1]) if more else None)


def session_message_get(*, user_id: int, session_id: int, message_id: int) -> AgentMessage:
    """The user's message ``message_id`` of their session ``session_id`` (only ``id``, ``role``
    and ``session_id`` loaded); AgentMessage.DoesNotExist when it is not one of those."""
    return AgentMessage.objects.only("id", "role", "session_id").get(
        pk=message_id, session_id=session_id, user_id=user_id
    )


def session_get(*, user_id: int, session_id: int) -> AgentSession:
    """The user's session (AgentSession.DoesNotExist when not theirs)."""
    return _sessions(user_id=user_id).get(pk=session_id)


def message_get(*, user_id: int, message_id: int) -> AgentMessage:
    """The user's message, with ``model_name`` and ``usage_id`` (its usage record, if any)."""
    return _messages(user_id=user_id).get(pk=message_id)


def session_detail(*, user_id: int, session_id: int) -> SessionDetail:
    """The user's session with its latest messages (at most DETAIL_LIMIT, in position order),
    tool calls, feedback and statistics. A fixed number of queries, whatever the session holds.

    Raises AgentSession.DoesNotExist when the session is not the user's.
    """
    session = session_get(user_id=user_id, session_id=session_id)
    messages = list(
        _messages(user_id=user_id)
        .filter(session_id=session_id)
        .order_by("-position")[: DETAIL_LIMIT + 1]
    )
    truncated = len(messages) > DETAIL_LIMIT
    messages = messages[:DETAIL_LIMIT][::-1]
    tool_calls = list(
        AgentToolCall.objects.filter(user_id=user_id, session_id=session_id).order_by(
            "-started_at", "-pk"
        )[:DETAIL_LIMIT]
    )[::-1]
    feedback = list(
        AgentFeedback.objects.filter(user_id=user_id, session_id=session_id).order_by(
            "-created_at", "-pk"
        )[:DETAIL_LIMIT]
    )[::-1]
    # The function behind the view, asked for this session only (the view asks for all).
    stats = next(
        iter(
            VisibleAgentSessionStats.objects.raw(
                "SELECT * FROM get_agent_session_stats(ARRAY[%s]::bigint[])", [session_id]
            )
        ),
        None,
    )
    return SessionDetail(
        session=session,
        messages=messages,
        messages_truncated=truncated,
        tool_calls=tool_calls,
        feedback=feedback,
        stats=stats,
    )
