"""ai_usage_requests is partitioned by month; idempotency holds across partitions."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from witchcraft.testing.factories import usage_request

pytestmark = pytest.mark.django_db


def _partition_of(usage_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM ai_usage_requests WHERE id = %s", [usage_id]
        )
        return cursor.fetchone()[0]


def _partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'ai_usage_requests'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


def _ensure(months_ahead: int, months_back: int = 0) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ensure_usage_partitions(%s, %s)", [months_ahead, months_back])
        return cursor.fetchone()[0]


def _month_name(moment: datetime) -> str:
    return f"ai_usage_requests_y{moment:%Y}m{moment:%m}"


def test_rows_of_different_months_land_in_different_partitions(user, catalog_model):
    now = datetime.now(UTC)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=12)
    this = usage_request(user=user, model=catalog_model, created_at=now)
    later = usage_request(user=user, model=catalog_model, created_at=next_month)
    assert _partition_of(this.id) == _month_name(now)
    assert _partition_of(later.id) == _month_name(next_month)


def test_month_boundaries_are_utc(user, catalog_model):
    now = datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_of_previous = first - timedelta(microseconds=1)
    on_boundary = usage_request(user=user, model=catalog_model, created_at=first)
    just_before = usage_request(user=user, model=catalog_model, created_at=last_of_previous)
    assert _partition_of(on_boundary.id) == _month_name(first)
    assert _partition_of(just_before.id) == _month_name(last_of_previous)


def test_a_row_far_in_the_future_lands_in_default(user, catalog_model):
    row = usage_request(user=user, model=catalog_model, created_at=datetime(2099, 5, 1, tzinfo=UTC))
    assert _partition_of(row.id) == "ai_usage_requests_default"


def test_ensure_usage_partitions_creates_what_is_missing_and_is_idempotent():
    before = _partitions()
    created = _ensure(8)
    after = _partitions()
    assert created == len(after - before) > 0
    assert _ensure(8) == 0
    assert _partitions() == after


def test_ensure_usage_partitions_moves_waiting_rows_out_of_default(user, catalog_model):
    far = datetime.now(UTC).replace(day=15) + timedelta(days=31 * 10)
    row = usage_request(user=user, model=catalog_model, created_at=far)
    assert _partition_of(row.id) == "ai_usage_requests_default"
    _ensure(11)
    assert _partition_of(row.id) == _month_name(far)


def test_ensure_usage_partitions_refuses_nonsense():
    with pytest.raises(Exception, match="between 0 and 120"), transaction.atomic():
        _ensure(-1)


def test_a_request_id_is_counted_once_per_user_across_partitions(user, catalog_model):
    now = datetime.now(UTC)
    usage_request(user=user, model=catalog_model, created_at=now, request_id="req-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        usage_request(
            user=user,
            model=catalog_model,
            created_at=now + timedelta(days=40),
            request_id="req-1",
        )


def test_the_same_request_id_is_fine_for_another_user(user, catalog_model):
    from witchcraft.testing.factories import UserFactory

    usage_request(user=user, model=catalog_model, request_id="req-2")
    usage_request(user=UserFactory(), model=catalog_model, request_id="req-2")


def test_a_usage_row_without_its_key_row_is_refused(user, catalog_model):
    with pytest.raises(IntegrityError, match="ai_usage_requests_key_fk"), connection.cursor() as c:
        c.execute(
            "INSERT INTO ai_usage_requests (user_id, provider_id, model_id, request_id)"
            " VALUES (%s, %s, %s, 'orphan')",
            [user.id, catalog_model.provider_id, catalog_model.id],
        )


def test_one_key_row_admits_one_usage_row(user, catalog_model):
    """Copying a row into another month with the same id is refused by the key match."""
    row = usage_request(user=user, model=catalog_model)
    with pytest.raises(IntegrityError), connection.cursor() as c:
        c.execute(
            "INSERT INTO ai_usage_requests (id, created_at, user_id, provider_id, model_id,"
            " request_id) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                row.id,
                row.created_at + timedelta(days=40),
                user.id,
                catalog_model.provider_id,
                catalog_model.id,
                row.request_id,
            ],
        )


def test_an_agent_message_has_at_most_one_usage_row(user, catalog_model):
    from witchcraft.testing.factories import AgentMessageFactory, AgentSessionFactory

    session = AgentSessionFactory(user=user)
    message = AgentMessageFactory(session=session, role="assistant")
    usage_request(user=user, model=catalog_model, agent_session=session, agent_message=message)
    with pytest.raises(IntegrityError), transaction.atomic():
        usage_request(user=user, model=catalog_model, agent_session=session, agent_message=message)
