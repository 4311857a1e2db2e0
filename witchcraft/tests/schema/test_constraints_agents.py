"""The database refuses bad rows of the agents tables (sessions, messages, tool calls,
feedback) naming the constraint."""

from datetime import timedelta

import pytest

from witchcraft.tests.schema.rows import EARLIER, NOT_OBJECTS, T0, Ref, assert_refused, bad

pytestmark = pytest.mark.django_db

BAD_ROWS = [
    # agents: sessions
    *[
        bad(
            f"session: negative {col}",
            "agent_sessions",
            {col: -1},
            f"agent_sessions_{col}_non_negative",
        )
        for col in (
            "message_count",
            "tool_call_count",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "total_cost",
        )
    ],
    bad(
        "session active after it ended",
        "agent_sessions",
        {"ended_at": T0 + timedelta(hours=1)},
        "agent_sessions_active_not_ended",
    ),
    bad(
        "session ending before it started",
        "agent_sessions",
        {"is_active": False, "ended_at": EARLIER, "last_activity_at": T0},
        "agent_sessions_end_after_start",
    ),
    bad(
        "session activity before it started",
        "agent_sessions",
        {"last_activity_at": EARLIER},
        "agent_sessions_activity_after_start",
    ),
    *[
        bad(
            f"session metadata {kind}",
            "agent_sessions",
            {"metadata": value},
            "agent_sessions_metadata_object",
        )
        for kind, value in NOT_OBJECTS.items()
    ],
    # agents: messages
    bad(
        "two messages at one position",
        "agent_messages",
        {"position": 1},
        "agent_messages_session_position_key",
    ),
    bad("message role 'bot'", "agent_messages", {"role": "bot"}, "agent_messages_role_valid"),
    # (0, like NULL, asks the agent_messages_position trigger for the next free position.)
    bad(
        "message at a negative position",
        "agent_messages",
        {"position": -1},
        "agent_messages_position_positive",
    ),
    *[
        bad(
            f"message: negative {col}",
            "agent_messages",
            {col: -1},
            f"agent_messages_{col}_non_negative",
        )
        for col in ("input_tokens", "output_tokens", "latency_ms")
    ],
    bad(
        "message metadata an array",
        "agent_messages",
        {"metadata": "[]"},
        "agent_messages_metadata_object",
    ),
    # agents: tool calls
    bad(
        "tool call status 'done'",
        "agent_tool_calls",
        {"status": "done"},
        "agent_tool_calls_status_valid",
    ),
    bad(
        "tool call negative duration",
        "agent_tool_calls",
        {"duration_ms": -1},
        "agent_tool_calls_duration_ms_non_negative",
    ),
    bad(
        "tool call completed before it started",
        "agent_tool_calls",
        {"completed_at": EARLIER},
        "agent_tool_calls_completed_after_start",
    ),
    bad(
        "tool call without a tool",
        "agent_tool_calls",
        {"tool_name": ""},
        "agent_tool_calls_tool_name",
    ),
    # agents: feedback
    bad(
        "second feedback on a message",
        "agent_feedback",
        {"user_id": Ref("user")},
        "agent_feedback_user_message_key",
    ),
    bad(
        "second feedback on a session",
        "agent_feedback",
        {"user_id": Ref("user"), "message_id": None},
        "agent_feedback_user_session_key",
    ),
    bad("rating 0", "agent_feedback", {"rating": 0}, "agent_feedback_rating_range"),
    bad("rating 6", "agent_feedback", {"rating": 6}, "agent_feedback_rating_range"),
]


@pytest.mark.parametrize(("table", "overrides", "constraint"), BAD_ROWS)
def test_a_bad_row_is_refused_naming_its_constraint(world, table, overrides, constraint):
    assert_refused(world, table, overrides, constraint)
