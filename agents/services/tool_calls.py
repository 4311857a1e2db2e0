"""Tool calls: recording one the agent makes, moving it on and finishing it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now

from agents.models import AgentToolCall, ToolCallStatus
from agents.services.errors import (
    CONFLICT,
    INVALID,
    SESSION_ENDED,
    TOOL_CALL_FINISHED,
    TOOL_CALL_NOT_STARTED,
    AgentError,
)
from agents.services.messages import _message_of_session
from agents.services.sessions import _locked_session

OPEN_STATUSES = (ToolCallStatus.PENDING, ToolCallStatus.RUNNING)
FINISHED_STATUSES = (ToolCallStatus.SUCCESS, ToolCallStatus.ERROR, ToolCallStatus.CANCELLED)
INT_MAX = 2_147_483_647


def tool_call_start(
    *,
    user_id: int,
    session_id: int,
    tool_name: str,
    arguments: dict[str, Any],
    message_id: int | None = None,
    status: str = ToolCallStatus.PENDING,
) -> AgentToolCall:
    """Record a tool call the agent makes in the user's active session; return it.

    ``message_id``, when given, must be a message of this session. Raises
    AgentSession.DoesNotExist (not the user's session); AgentError: not_found (``message_id``),
    invalid (``status`` other than pending or running), conflict (ended session).
    """
    if status not in OPEN_STATUSES:
        raise AgentError(INVALID, TOOL_CALL_NOT_STARTED, field="status")
    with transaction.atomic():
        session = _locked_session(user_id=user_id, session_id=session_id)
        if not session.is_active:
            raise AgentError(CONFLICT, SESSION_ENDED)
        if message_id is not None:
            _message_of_session(user_id=user_id, session_id=session_id, message_id=message_id)
        return AgentToolCall.objects.create(
            session_id=session_id,
            user_id=user_id,
            message_id=message_id,
            tool_name=tool_name,
            arguments=arguments,
            status=status,
        )


def tool_call_finish(
    *,
    user_id: int,
    session_id: int,
    call_id: int,
    status: str,
    result: Any = None,
    error: str = "",
) -> AgentToolCall:
    """Move a tool call on: to ``running``, or finish it (success, error, cancelled) with its
    result or error; return it.

    On finishing, ``completed_at`` is the database's now and ``duration_ms`` the time since the
    call was started. Works on an ended session too (a call may finish after its session).
    Raises AgentToolCall.DoesNotExist (not a call of the user's session); AgentError: conflict
    (the call has finished already: it never changes again).
    """
    with transaction.atomic():
        call = (
            AgentToolCall.objects.select_for_update()
            .only("id", "status")
            .get(pk=call_id, session_id=session_id, user_id=user_id)
        )
        if call.status in FINISHED_STATUSES:
            raise AgentError(CONFLICT, TOOL_CALL_FINISHED)
        if status == ToolCallStatus.RUNNING:
            changes: dict[str, Any] = {"status": status}
        else:
            changes = {
                "status": status,
                "result": result,
                "error": error,
                "completed_at": Now(),
                # The same clock as completed_at (Now() is statement_timestamp() here).
                "duration_ms": RawSQL(
                    "least(greatest(0, round(extract(epoch FROM statement_timestamp()"
                    " - started_at) * 1000)), %s)::integer",
                    [INT_MAX],
                ),
            }
        AgentToolCall.objects.filter(pk=call.pk).update(**changes)
        return AgentToolCall.objects.get(pk=call.pk)
