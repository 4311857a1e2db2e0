"""agent_session_stats: the materialized view of per-session statistics."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from agents.models import AgentFeedback, AgentSessionStats, AgentToolCall
from witchcraft.testing.factories import AgentMessageFactory, AgentSessionFactory

pytestmark = pytest.mark.django_db


def _refresh(concurrently: bool = True) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "REFRESH MATERIALIZED VIEW "
            + ("CONCURRENTLY " if concurrently else "")
            + "agent_session_stats"
        )


def test_the_view_has_a_unique_index_so_it_can_refresh_concurrently():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'agent_session_stats'"
            " AND indexdef LIKE 'CREATE UNIQUE INDEX%%'"
        )
        assert cursor.fetchall()


def test_stats_count_messages_tool_calls_and_feedback(user):
    session = AgentSessionFactory(user=user, input_tokens=300, output_tokens=200, total_tokens=500)
    AgentMessageFactory(session=session, role="user", position=1)
    answer = AgentMessageFactory(session=session, role="assistant", position=2, latency_ms=800)
    AgentMessageFactory(session=session, role="assistant", position=3, latency_ms=400)
    AgentMessageFactory(session=session, role="tool", position=4)
    for status in ("success", "success", "error"):
        AgentToolCall.objects.create(session=session, user=user, tool_name="search", status=status)
    AgentFeedback.objects.create(session=session, message=answer, user=user, rating=4)
    AgentFeedback.objects.create(session=session, user=user, rating=5)

    _refresh(concurrently=False)
    stats = AgentSessionStats.objects.get(session=session)
    assert (stats.user_messages, stats.assistant_messages, stats.tool_messages) == (1, 2, 1)
    assert (stats.tool_calls, stats.tool_calls_succeeded) == (3, 2)
    assert stats.tool_success_rate == Decimal("0.6667")
    assert stats.avg_latency_ms == 600
    assert (stats.feedback_count, stats.avg_rating) == (2, Decimal("4.50"))
    assert stats.total_tokens == 500
    assert stats.user_id == user.id


def test_a_session_with_nothing_in_it_has_zero_stats(user):
    session = AgentSessionFactory(user=user)
    _refresh(concurrently=False)
    stats = AgentSessionStats.objects.get(session=session)
    assert stats.user_messages == stats.tool_calls == stats.feedback_count == 0
    assert stats.tool_success_rate is None
    assert stats.avg_rating is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_refresh_concurrently_does_not_block_readers(user):
    """REFRESH ... CONCURRENTLY needs committed data and runs outside a transaction block."""
    session = AgentSessionFactory(user=user)
    AgentMessageFactory(session=session, role="user", position=1)
    _refresh(concurrently=False)
    AgentMessageFactory(session=session, role="assistant", position=2)

    seen: list[int] = []

    def read_while_refreshing() -> None:
        from django.db import connections

        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    "SELECT assistant_messages FROM agent_session_stats WHERE session_id = %s",
                    [session.id],
                )
                seen.append(cursor.fetchone()[0])
        finally:
            connections["default"].close()

    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY agent_session_stats")
        reader = threading.Thread(target=read_while_refreshing)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "a reader was blocked by the concurrent refresh"
        cursor.execute("COMMIT")
    assert seen == [0]  # the reader saw the old contents, without waiting
    assert AgentSessionStats.objects.get(session=session).assistant_messages == 1
