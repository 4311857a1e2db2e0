"""Agent session counters kept by triggers: they always equal a recount of the children."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Count, Max, Sum

from agents.models import AgentMessage, AgentSession, AgentToolCall
from usage import services as usage_services
from usage.models import AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    UserFactory,
    catalog_model,
    quota_for,
    usage_request,
)

pytestmark = pytest.mark.django_db


def recount(session: AgentSession) -> dict:
    """What the session's counters must say, counted from its children."""
    messages = AgentMessage.objects.filter(session=session).aggregate(
        n=Count("id"), latest=Max("created_at")
    )
    usage = AIUsageRequest.objects.filter(agent_session=session).aggregate(
        i=Sum("input_tokens"), o=Sum("output_tokens"), t=Sum("total_tokens"), c=Sum("cost")
    )
    return {
        "message_count": messages["n"],
        "tool_call_count": AgentToolCall.objects.filter(session=session).count(),
        "input_tokens": usage["i"] or 0,
        "output_tokens": usage["o"] or 0,
        "total_tokens": usage["t"] or 0,
        "total_cost": usage["c"] or Decimal(0),
        "last_activity_at": max(filter(None, [session.started_at, messages["latest"]])),
    }


def counters(session: AgentSession) -> dict:
    session.refresh_from_db()
    return {field: getattr(session, field) for field in recount(session)}


def _record(user, session=None, message=None, **fields) -> int:
    model = catalog_model()
    with transaction.atomic(), rls.user_context(user, may_record=True):
        return usage_services.usage_record(
            user_id=user.id,
            provider_id=model.provider_id,
            model_id=model.id,
            input_tokens=fields.pop("input_tokens", 1_000),
            output_tokens=fields.pop("output_tokens", 200),
            agent_session_id=session and session.id,
            agent_message_id=message and message.id,
            **fields,
        )


def _say(session, role: str = "user", **fields) -> AgentMessage:
    """Insert a message as its owner (the runtime role), letting the database number it."""
    with transaction.atomic(), rls.user_context(session.user):
        message = AgentMessage.objects.create(
            session=session, user=session.user, role=role, content="...", position=None, **fields
        )
    message.refresh_from_db()
    return message


def test_a_new_session_counts_nothing(user):
    session = AgentSessionFactory(user=user)
    assert counters(session) == recount(session)
    assert session.message_count == session.tool_call_count == session.total_tokens == 0


def test_messages_tool_calls_and_usage_add_up_on_the_session(user):
    quota_for(user)
    session = AgentSessionFactory(user=user)
    question = _say(session, "user")
    answer = _say(session, "assistant")
    _record(user, session, answer, input_tokens=1_200, output_tokens=300)
    _record(user, session, input_tokens=10, output_tokens=5, status="error")
    with transaction.atomic(), rls.user_context(user):
        for tool in ("search", "fetch", "search"):
            AgentToolCall.objects.create(session=session, message=answer, user=user, tool_name=tool)

    assert counters(session) == recount(session)
    assert (session.message_count, session.tool_call_count) == (2, 3)
    assert (session.input_tokens, session.output_tokens, session.total_tokens) == (
        1_210,
        305,
        1_515,
    )
    assert session.total_cost == sum(
        AIUsageRequest.objects.filter(agent_session=session).values_list("cost", flat=True)
    )
    assert session.last_activity_at >= answer.created_at >= question.created_at


def test_usage_of_a_message_without_a_session_argument_counts_on_the_messages_session(user):
    session = AgentSessionFactory(user=user)
    answer = _say(session, "assistant")
    _record(user, message=answer, input_tokens=40, output_tokens=2)
    assert counters(session)["total_tokens"] == 42


def test_usage_inserted_directly_counts_too(user):
    """The totals are kept by a trigger on the usage table, not only by record_ai_usage."""
    session = AgentSessionFactory(user=user)
    usage_request(user=user, model=catalog_model(), agent_session=session)
    usage_request(user=user, model=catalog_model(), agent_session=session)
    usage_request(user=user, model=catalog_model())  # no session: counts nowhere
    assert counters(session) == recount(session)
    assert session.total_tokens == 3_000


def test_usage_of_other_sessions_does_not_leak(user):
    mine, other = AgentSessionFactory(user=user), AgentSessionFactory(user=user)
    _record(user, other)
    assert counters(mine)["total_tokens"] == 0
    assert counters(other) == recount(other)


def test_positions_are_assigned_in_order_when_not_given(user):
    session = AgentSessionFactory(user=user)
    positions = [_say(session).position for _ in range(3)]
    assert positions == [1, 2, 3]
    AgentMessageFactory(session=session, position=10)  # an explicit position is kept
    assert _say(session).position == 11


def test_positions_are_per_session(user):
    first, second = AgentSessionFactory(user=user), AgentSessionFactory(user=user)
    _say(first)
    _say(first)
    assert _say(second).position == 1


def test_deleting_messages_and_tool_calls_counts_down(user):
    session = AgentSessionFactory(user=user)
    early = _say(session)
    late = _say(session, created_at=datetime.now(UTC) + timedelta(minutes=5))
    call = AgentToolCall.objects.create(session=session, user=user, tool_name="search")
    AgentToolCall.objects.create(session=session, user=user, tool_name="fetch")
    assert counters(session)["last_activity_at"] == late.created_at

    late.delete()
    call.delete()

    assert counters(session) == recount(session)
    assert (session.message_count, session.tool_call_count) == (1, 1)
    assert session.last_activity_at == max(session.started_at, early.created_at)


def test_deleting_a_session_with_everything_in_it_works(user):
    session = AgentSessionFactory(user=user)
    answer = _say(session, "assistant")
    AgentToolCall.objects.create(session=session, message=answer, user=user, tool_name="x")
    _record(user, session, answer)
    session.delete()
    assert not AgentMessage.objects.filter(session_id=session.id).exists()
    assert AIUsageRequest.objects.get(user=user).agent_session_id is None


def test_the_runtime_role_still_cannot_write_the_counters(user):
    session = AgentSessionFactory(user=user)
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        rls.user_context(user),
    ):
        AgentSession.objects.filter(pk=session.pk).update(message_count=99)


def test_a_message_in_someone_elses_session_is_still_refused(user):
    foreign = AgentSessionFactory(user=UserFactory())
    with (
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        rls.user_context(user),
    ):
        AgentMessage.objects.create(
            session=foreign, user=user, role="user", content="hi", position=None
        )
    assert counters(foreign)["message_count"] == 0


def test_the_counters_survive_a_partition_move(user):
    """ensure_usage_partitions moves rows out of DEFAULT: the totals must not change."""
    session = AgentSessionFactory(user=user)
    far = datetime.now(UTC).replace(day=15) + timedelta(days=31 * 20)
    usage_request(user=user, model=catalog_model(), agent_session=session, created_at=far)
    before = counters(session)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ensure_usage_partitions(22)")
    assert counters(session) == before == recount(session)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_messages_get_distinct_positions_and_an_exact_count():
    user = UserFactory()
    session = AgentSessionFactory(user=user)
    count = 8
    barrier = threading.Barrier(count)
    errors: list[Exception] = []

    def say() -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            _say(session)
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=say) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    positions = sorted(
        AgentMessage.objects.filter(session=session).values_list("position", flat=True)
    )
    assert positions == list(range(1, count + 1))
    assert counters(session) == recount(session)
