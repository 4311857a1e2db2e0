"""Writes for agents: sessions, their messages (an assistant reply with its usage), tool calls,
feedback, and ending a session.

The services run inside the caller's row-level-security context (a request's user, or
``rls.service_context()``): the policies of agents/sql/0002_rls.sql decide what is visible,
and every lookup here also names ``user_id``, so an admin's own calls touch only their own
sessions. A row that is not the user's is simply not found (``DoesNotExist``, a 404 in the
API: existence never leaks). Counters and totals of a session are kept by the triggers of
agents/sql/0003_session_counters.sql, never written here.

The package holds them by topic (sessions, messages, tool_calls, feedback, and the errors they
raise); every public name stays importable from ``agents.services``.
"""

from agents.services.errors import (
    AMBIGUOUS_MODEL,
    CONFLICT,
    FEEDBACK_NOT_ASSISTANT,
    INVALID,
    MODEL_MISMATCH,
    NO_SUCH_MESSAGE,
    NOT_FOUND,
    REQUEST_ID_REUSED,
    REQUEST_ID_USED,
    SESSION_ENDED,
    TOOL_CALL_FINISHED,
    TOOL_CALL_NOT_STARTED,
    UNKNOWN_MODEL,
    UNKNOWN_PROVIDER_MODEL,
    USAGE_NOT_ASSISTANT,
    AgentError,
)
from agents.services.feedback import feedback_give
from agents.services.messages import RETRY_MUST_MATCH, MessageUsage, message_add
from agents.services.sessions import session_create, session_end
from agents.services.tool_calls import (
    FINISHED_STATUSES,
    INT_MAX,
    OPEN_STATUSES,
    tool_call_finish,
    tool_call_start,
)

__all__ = [
    "AMBIGUOUS_MODEL",
    "CONFLICT",
    "FEEDBACK_NOT_ASSISTANT",
    "FINISHED_STATUSES",
    "INT_MAX",
    "INVALID",
    "MODEL_MISMATCH",
    "NOT_FOUND",
    "NO_SUCH_MESSAGE",
    "OPEN_STATUSES",
    "REQUEST_ID_REUSED",
    "REQUEST_ID_USED",
    "RETRY_MUST_MATCH",
    "SESSION_ENDED",
    "TOOL_CALL_FINISHED",
    "TOOL_CALL_NOT_STARTED",
    "UNKNOWN_MODEL",
    "UNKNOWN_PROVIDER_MODEL",
    "USAGE_NOT_ASSISTANT",
    "AgentError",
    "MessageUsage",
    "feedback_give",
    "message_add",
    "session_create",
    "session_end",
    "tool_call_finish",
    "tool_call_start",
]
