"""Agent sessions over JSON: sessions, messages (an assistant reply with its usage), tool calls,
feedback. The same services and selectors as the pages (agents.services, agents.selectors).

Everything answers 404 for a session, message or tool call that is not the caller's (it is
invisible to them: existence does not leak), 409 for a change the session's or call's state
forbids, 422 naming the field for bad input; nothing is written then. The services' refusals
are answered by the API's one handler (witchcraft/api.py, witchcraft.platform.refusals).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Query, Router, Schema, Status
from pydantic import ValidationInfo, field_validator

from accounts import scopes
from accounts.bearer import require_scope, scoped
from agents import selectors, services
from usage.schemas import REFUSED_FIELDS, ClientCost, ClientReservation
from usage.services import UsageError, access_token_id_of
from witchcraft.platform.api_types import (
    MAX_TOKENS,
    Id,
    Millis,
    ObjectInput,
    Text,
    Tokens,
    json_object,
    json_value,
)

# Every operation needs the agents scope; an assistant message that carries usage also needs
# usage.record (message_add).
router = Router(tags=["agents"], auth=scoped(scopes.AGENTS))

MAX_CONTENT = 100_000  # characters of a message

Metadata = json_object(16_384, 32)
Arguments = json_object(65_536, 32)
Result = json_value(262_144, 32)
ModelName = Annotated[Text, Field(min_length=1, max_length=100)]


# --- input -------------------------------------------------------------------------------


class SessionIn(ObjectInput):
    title: Text = Field("", max_length=200)
    agent_name: Text | None = Field(None, min_length=1, max_length=100)
    model: ModelName | None = Field(None, description="an active model of the catalog, by name")
    metadata: Metadata | None = Field(None, description="a JSON object, at most 16 KB")


class UsageIn(ObjectInput):
    """The AI request that produced an assistant message, as for `POST /usage`."""

    provider: Annotated[Text, Field(min_length=1, max_length=40, description="provider slug")]
    model: ModelName
    input_tokens: Tokens = Field(description="including cached input tokens")
    output_tokens: Tokens = Field(description="including reasoning tokens")
    cached_input_tokens: Tokens = 0
    reasoning_tokens: Tokens = 0
    request_id: Annotated[Text, Field(min_length=1, max_length=100)] = Field(
        description="the client's id of the AI request: a retry with it records nothing twice"
    )
    latency_ms: Millis | None = None
    time_to_first_token_ms: Millis | None = None
    status: Literal["success", "error", "timeout", "cancelled", "rejected"] = "success"
    reservation_id: Id | None = Field(
        None, description="the reservation of `POST /quota/consume` this request settles"
    )
    cost: ClientCost = None
    reserved_tokens: ClientReservation = None
    reserved_cost: ClientReservation = None

    @field_validator("cached_input_tokens")
    @classmethod
    def _cached_within_input(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("input_tokens", MAX_TOKENS):
            raise ValueError("cannot exceed input_tokens")
        return value

    @field_validator("reasoning_tokens")
    @classmethod
    def _reasoning_within_output(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("output_tokens", MAX_TOKENS):
            raise ValueError("cannot exceed output_tokens")
        return value


class MessageIn(ObjectInput):
    role: Literal["user", "assistant", "system", "tool"]
    content: Text = Field(max_length=MAX_CONTENT)
    model: ModelName | None = Field(None, description="default: the usage's model")
    input_tokens: Tokens | None = Field(None, description="default: the usage's")
    output_tokens: Tokens | None = Field(None, description="default: the usage's")
    latency_ms: Millis | None = Field(None, description="default: the usage's")
    usage: UsageIn | None = Field(None, description="assistant messages only")

    @field_validator("usage")
    @classmethod
    def _usage_on_assistant_only(cls, value, info: ValidationInfo):
        if value is not None and info.data.get("role", "assistant") != "assistant":
            raise ValueError(services.USAGE_NOT_ASSISTANT)
        return value


class ToolCallIn(ObjectInput):
    tool_name: Annotated[Text, Field(min_length=1, max_length=100)]
    arguments: Arguments = Field(default_factory=dict, description="a JSON object, at most 64 KB")
    message_id: Id | None = Field(None, description="a message of this session")
    status: Literal["pending", "running"] = "pending"


class ToolCallUpdateIn(ObjectInput):
    status: Literal["running", "success", "error", "cancelled"]
    result: Result = Field(None, description="any JSON, at most 256 KB")
    error: Text = Field("", max_length=10_000)


class FeedbackIn(ObjectInput):
    rating: int = Field(ge=1, le=5, description="1 to 5 (thumbs up is 5, down is 1)")
    comment: Text = Field("", max_length=5_000)
    category: Text = Field("", max_length=50)
    message_id: Id | None = Field(None, description="an assistant message; none: the session")


# --- output ------------------------------------------------------------------------------


class SessionOut(Schema):
    id: int
    title: str
    agent_name: str
    model: str | None
    is_active: bool
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    message_count: int
    tool_call_count: int
    input_tokens: int = Field(description="of the session's recorded usage")
    output_tokens: int
    total_tokens: int
    total_cost: Decimal = Field(description="US dollars")
    metadata: dict[str, Any]

    @staticmethod
    def resolve_model(obj) -> str | None:
        return obj.model_name


class SessionPageOut(Schema):
    items: list[SessionOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class MessageOut(Schema):
    id: int
    session_id: int
    role: str
    content: str
    position: int
    model: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: int | None
    usage_id: int | None = Field(description="the usage record of this message, if any")
    created_at: datetime

    @staticmethod
    def resolve_model(obj) -> str | None:
        return obj.model_name


class ToolCallOut(Schema):
    id: int
    session_id: int
    message_id: int | None
    tool_name: str
    arguments: dict[str, Any]
    result: Any
    status: str
    error: str
    started_at: datetime
    completed_at: datetime | None
    duration_ms: int | None


class FeedbackOut(Schema):
    id: int
    session_id: int
    message_id: int | None
    rating: int
    comment: str
    category: str
    created_at: datetime


class SessionStatsOut(Schema):
    user_messages: int
    assistant_messages: int
    system_messages: int
    tool_messages: int
    tool_calls: int
    tool_calls_succeeded: int
    tool_success_rate: Decimal | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    total_cost: Decimal
    duration_seconds: float | None
    avg_latency_ms: float | None
    feedback_count: int
    avg_rating: Decimal | None
    refreshed_at: datetime


class SessionDetailOut(Schema):
    session: SessionOut
    messages: list[MessageOut] = Field(
        description=f"the latest {selectors.DETAIL_LIMIT} messages, in position order"
    )
    messages_truncated: bool = Field(description="earlier messages exist beyond these")
    tool_calls: list[ToolCallOut] = Field(description=f"the latest {selectors.DETAIL_LIMIT}")
    feedback: list[FeedbackOut] = Field(description=f"the latest {selectors.DETAIL_LIMIT}")
    stats: SessionStatsOut | None = Field(
        description="from the statistics refreshed every few minutes; null until then"
    )


# --- endpoints ---------------------------------------------------------------------------


@contextmanager
def _usage_fields() -> Iterator[None]:
    """Name the field of a usage refusal (the API's one handler answers it): record_ai_usage
    words its refusals to name the fault, which concerns the message's ``usage`` (its field
    when the function names the column, as for the reservation)."""
    try:
        yield
    except UsageError as refused:
        refused.field = f"usage.{refused.column}" if refused.column else "usage"
        raise


@router.post("/sessions", response={201: SessionOut}, summary="Start an agent session")
def session_create(request, payload: SessionIn):
    session = services.session_create(user_id=request.user.pk, **payload.model_dump())
    return Status(201, selectors.session_get(user_id=request.user.pk, session_id=session.pk))


@router.get("/sessions", response=SessionPageOut, summary="Your agent sessions")
def session_list(
    request,
    active: bool | None = Query(None, description="only active (true) or ended (false) ones"),
    limit: int = Query(selectors.PAGE_SIZE, ge=1, le=selectors.MAX_PAGE_SIZE),
    cursor: str | None = Query(None, max_length=200, description="`next_cursor` of a page"),
):
    """Most recent activity first. Keyset pages: follow `next_cursor` until it is null."""
    return selectors.sessions_page(
        user_id=request.user.pk, active=active, limit=limit, cursor=cursor
    )


@router.get(
    "/sessions/{session_id}", response=SessionDetailOut, summary="A session with its messages"
)
def session_detail(request, session_id: int):
    """The session, its latest 500 messages (in position order; `messages_truncated` says
    whether earlier ones exist), its latest 500 tool calls and feedback, and its statistics."""
    return selectors.session_detail(user_id=request.user.pk, session_id=session_id)


@router.post(
    "/sessions/{session_id}/messages",
    response={200: MessageOut, 201: MessageOut},
    summary="Add a message (an assistant reply with its usage)",
)
def message_add(request, session_id: int, payload: MessageIn):
    """Numbered by the server. An assistant message may carry the `usage` of the AI request
    that produced it: recorded with the message, in one transaction, and added to the
    session's totals. Retrying (the same message with the same `usage.request_id`) returns the
    message recorded the first time (200) and writes nothing; a `request_id` recorded for
    anything else is a conflict (409). An ended session takes no messages (409). A message
    with `usage` needs the scope `usage.record` too (403 `insufficient_scope`); the usage is
    priced by the server and may name the `reservation_id` it settles."""
    data = payload.model_dump(exclude={"usage"})
    usage = None
    if payload.usage is not None:
        require_scope(request, scopes.USAGE_RECORD)
        usage = services.MessageUsage(**payload.usage.model_dump(exclude=REFUSED_FIELDS))
    with _usage_fields():
        message, created = services.message_add(
            user_id=request.user.pk,
            session_id=session_id,
            usage=usage,
            access_token_id=access_token_id_of(request),
            **data,
        )
    return Status(
        201 if created else 200,
        selectors.message_get(user_id=request.user.pk, message_id=message.pk),
    )


@router.post(
    "/sessions/{session_id}/tool-calls", response={201: ToolCallOut}, summary="Start a tool call"
)
def tool_call_start(request, session_id: int, payload: ToolCallIn):
    """An ended session takes no tool calls (409)."""
    call = services.tool_call_start(
        user_id=request.user.pk, session_id=session_id, **payload.model_dump()
    )
    return Status(201, call)


@router.patch(
    "/sessions/{session_id}/tool-calls/{call_id}",
    response=ToolCallOut,
    summary="Mark a tool call running, or finish it",
)
def tool_call_finish(request, session_id: int, call_id: int, payload: ToolCallUpdateIn):
    """Finishing (success, error, cancelled) sets `completed_at` and `duration_ms` (since the
    call was started) on the server. A finished call never changes again (409)."""
    return services.tool_call_finish(
        user_id=request.user.pk, session_id=session_id, call_id=call_id, **payload.model_dump()
    )


@router.post(
    "/sessions/{session_id}/feedback",
    response={200: FeedbackOut, 201: FeedbackOut},
    summary="Rate an assistant message or the session",
)
def feedback_give(request, session_id: int, payload: FeedbackIn):
    """One feedback per message (and one for the session as a whole, without `message_id`):
    giving it again replaces it (200). Ended sessions take feedback too."""
    feedback, created = services.feedback_give(
        user_id=request.user.pk, session_id=session_id, **payload.model_dump()
    )
    return Status(201 if created else 200, feedback)


@router.post("/sessions/{session_id}/end", response=SessionOut, summary="End a session")
def session_end(request, session_id: int):
    """Ending an ended session changes nothing and answers the same."""
    services.session_end(user_id=request.user.pk, session_id=session_id)
    return selectors.session_get(user_id=request.user.pk, session_id=session_id)
