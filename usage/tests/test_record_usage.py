"""record_ai_usage (the AI request flow, steps 4-8) and get_user_activity_summary."""

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Sum

from agents.models import AgentMessage, AgentSession
from billing import services as billing_services
from billing.models import UsageAlert, UserQuota
from usage import selectors, services
from usage.models import (
    AIModel,
    AIUsageDaily,
    AIUsageMonthly,
    AIUsageRequest,
    AIUsageRequestKey,
)
from witchcraft.platform import rls
from witchcraft.testing.factories import (
    AgentMessageFactory,
    AgentSessionFactory,
    UserFactory,
    catalog_model,
    quota_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(user):
    quota_for(user, "free")  # 100 000 tokens, $1.00
    return user


@pytest.fixture
def model(db) -> AIModel:
    return catalog_model("gpt-5-mini")  # $0.25 in, $2.00 out, $0.025 cached in per 1M


def record(user, model: AIModel, *, as_user=None, service: bool = False, **fields) -> int:
    """usage_record for ``user`` as ``as_user`` (default the user) or the service context."""
    fields.setdefault("provider_id", model.provider_id)
    fields.setdefault("model_id", model.id)
    fields.setdefault("input_tokens", 1_000)
    fields.setdefault("output_tokens", 500)
    context = (
        rls.service_context() if service else rls.user_context(as_user or user, may_record=True)
    )
    with transaction.atomic(), context:
        return services.usage_record(user_id=user.id, **fields)


def snapshot(user) -> dict:
    """Everything a record writes, summed."""
    quota = UserQuota.objects.filter(user=user).first()
    return {
        "rows": AIUsageRequest.objects.filter(user=user).count(),
        "keys": AIUsageRequestKey.objects.filter(user=user).count(),
        "daily": AIUsageDaily.objects.filter(user=user).aggregate(
            n=Sum("request_count"), t=Sum("total_tokens"), c=Sum("cost")
        ),
        "monthly": AIUsageMonthly.objects.filter(user=user).aggregate(
            n=Sum("request_count"), t=Sum("total_tokens"), c=Sum("cost")
        ),
        "quota": quota and (quota.tokens_used, quota.cost_used),
        "alerts": UsageAlert.objects.filter(user=user).count(),
    }


# Recording ---------------------------------------------------------------------------------------


def test_a_record_writes_the_row_with_cost_from_the_models_prices(member, model):
    usage_id = record(
        member,
        model,
        input_tokens=1_000,
        cached_input_tokens=200,
        output_tokens=500,
        reasoning_tokens=100,
        latency_ms=900,
        time_to_first_token_ms=120,
        request_id="req-1",
        metadata={"feature": "chat"},
    )
    row = AIUsageRequest.objects.get(pk=usage_id)
    # (800 * 0.25 + 200 * 0.025 + 500 * 2.00) / 1e6
    assert row.cost == Decimal("0.001205")
    assert row.total_tokens == 1_500
    assert (
        row.input_price_per_million,
        row.output_price_per_million,
        row.cached_input_price_per_million,
    ) == (
        model.input_price_per_million,
        model.output_price_per_million,
        model.cached_input_price_per_million,
    )
    assert (row.request_id, row.status, row.metadata) == ("req-1", "success", {"feature": "chat"})
    key = AIUsageRequestKey.objects.get(pk=usage_id)
    assert (key.user_id, key.request_id, key.created_at) == (member.id, "req-1", row.created_at)


def test_a_price_change_does_not_rewrite_history(member, model):
    usage_id = record(member, model)
    AIModel.objects.filter(pk=model.pk).update(input_price_per_million=Decimal("99"))
    row = AIUsageRequest.objects.get(pk=usage_id)
    assert row.input_price_per_million == Decimal("0.25")
    assert row.cost == Decimal("0.001250")


def test_only_the_service_context_may_give_a_cost(member, model):
    """A user's request never sets its price: 5M + 5M tokens "for $0" is refused with 42501.
    An operator importing history (the service context) may book what was really billed."""
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        rls.user_context(member, may_record=True),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT record_ai_usage(p_user_id => %s, p_provider_id => %s, p_model_id => %s,"
            " p_input_tokens => 5000000, p_output_tokens => 5000000, p_cost => 0)",
            [member.id, model.provider_id, model.id],
        )
    assert refused.value.__cause__.sqlstate == "42501"
    assert not AIUsageRequest.objects.filter(user=member).exists()
    usage_id = record(member, model, cost=Decimal("0.5"), service=True)
    assert AIUsageRequest.objects.get(pk=usage_id).cost == Decimal("0.5")


def test_a_record_adds_to_the_daily_and_monthly_rollups(member, model):
    record(member, model, input_tokens=100, output_tokens=50, latency_ms=200)
    record(member, model, input_tokens=10, output_tokens=5, status="error", error_code="429")
    record(member, model, input_tokens=1, output_tokens=0, status="timeout", latency_ms=1000)

    today = datetime.now(UTC).date()
    daily = AIUsageDaily.objects.get(user=member)
    assert (daily.usage_date, daily.provider_id, daily.model_id) == (
        today,
        model.provider_id,
        model.id,
    )
    monthly = AIUsageMonthly.objects.get(user=member)
    assert (monthly.year, monthly.month) == (today.year, today.month)
    for rollup in (daily, monthly):
        assert (rollup.request_count, rollup.success_count, rollup.error_count) == (3, 1, 2)
        assert (rollup.input_tokens, rollup.output_tokens, rollup.total_tokens) == (111, 55, 166)
        assert (rollup.latency_ms_sum, rollup.latency_count) == (1_200, 2)
    assert daily.cost == sum(
        AIUsageRequest.objects.filter(user=member).values_list("cost", flat=True)
    )


def test_models_and_providers_get_separate_daily_rows(member, model):
    other = catalog_model("claude-haiku-4-5")
    record(member, model)
    record(member, other)
    assert AIUsageDaily.objects.filter(user=member).count() == 2
    assert AIUsageMonthly.objects.get(user=member).request_count == 2


def test_the_quota_is_booked_with_the_actual_amount_minus_the_reservation(member, model):
    with transaction.atomic(), rls.user_context(member, may_record=True):
        decision = billing_services.quota_consume(
            user_id=member.id, tokens=4_000, cost=Decimal("0.01")
        )
    assert decision.allowed
    assert UserQuota.objects.get(user=member).tokens_used == 4_000
    record(
        member,
        model,
        input_tokens=1_000,
        output_tokens=500,
        reservation_id=decision.reservation_id,
    )
    quota = UserQuota.objects.get(user=member)
    assert (quota.tokens_used, quota.cost_used) == (1_500, Decimal("0.001250"))


def test_recording_raises_quota_alerts(member, model):
    record(member, model, input_tokens=80_000, output_tokens=0)
    assert set(UsageAlert.objects.values_list("alert_type", "metric")) == {("warning", "tokens")}


def test_recording_works_without_a_quota(user, model):
    usage_id = record(user, model)
    assert AIUsageRequest.objects.filter(pk=usage_id).exists()
    assert not UserQuota.objects.filter(user=user).exists()


def test_recording_rolls_an_ended_quota_forward_first(member, model):
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    UserQuota.objects.filter(user=member).update(
        period_start=(this_month - timedelta(days=1)).replace(day=1),
        period_end=this_month,
        tokens_used=99_000,
    )
    record(member, model, input_tokens=100, output_tokens=0)
    quota = UserQuota.objects.get(user=member)
    assert (quota.period_start, quota.tokens_used) == (this_month, 100)


def test_a_generated_request_id_when_none_is_given(member, model):
    first, second = record(member, model), record(member, model, request_id="")
    ids = AIUsageRequest.objects.filter(pk__in=[first, second]).values_list("request_id", flat=True)
    assert len(set(ids)) == 2
    for request_id in ids:
        uuid.UUID(request_id)


# Idempotency -------------------------------------------------------------------------------------


def test_a_retried_request_id_returns_the_same_id_and_changes_nothing(member, model):
    first = record(member, model, request_id="retry-me", latency_ms=10)
    before = snapshot(member)
    again = record(member, model, request_id="retry-me", latency_ms=10)
    different = record(
        member, model, request_id="retry-me", input_tokens=9_999, reservation_id=987_654_321
    )
    assert first == again == different
    assert snapshot(member) == before


def test_the_same_request_id_is_separate_for_another_user(member, model):
    other = UserFactory()
    assert record(member, model, request_id="shared") != record(other, model, request_id="shared")


# Validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_tokens": -1}, "token counts must be non-negative"),
        ({"output_tokens": -5}, "token counts must be non-negative"),
        ({"cached_input_tokens": 1_001}, "cached input tokens (1001) cannot exceed input"),
        ({"reasoning_tokens": 501}, "reasoning tokens (501) cannot exceed output"),
        ({"status": "exploded"}, "status exploded is not one of success, error"),
        ({"reservation_id": 0}, "reservation_id must be a positive whole number"),
        ({"latency_ms": -1}, "latencies must be non-negative"),
        ({"request_id": "x" * 101}, "request id is longer than 100 characters"),
        ({"input_tokens": 2**31}, "out of range"),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_is_written(member, model, fields, message):
    before = snapshot(member)
    with pytest.raises(services.UsageError) as refused:
        record(member, model, **fields)
    assert refused.value.code == services.INVALID
    assert message in refused.value.message
    assert snapshot(member) == before


def test_a_model_of_another_provider_is_refused(member, model):
    claude = catalog_model("claude-haiku-4-5")
    before = snapshot(member)
    with pytest.raises(services.UsageError) as refused:
        record(member, model, model_id=claude.id)
    assert refused.value.message == (
        f"model {claude.id} is not a model of provider {model.provider_id}"
    )
    assert snapshot(member) == before


def test_an_unknown_model_is_refused(member, model):
    with pytest.raises(services.UsageError) as refused:
        record(member, model, model_id=999_999)
    assert refused.value.message == f"model 999999 is not a model of provider {model.provider_id}"


def test_an_agent_session_of_another_user_is_refused(member, model):
    foreign = AgentSessionFactory()
    with pytest.raises(services.UsageError) as refused:
        record(member, model, agent_session_id=foreign.id)
    assert (
        refused.value.message == f"agent session {foreign.id} is not a session of user {member.id}"
    )
    foreign_message = AgentMessageFactory(session=foreign)
    with pytest.raises(services.UsageError, match="is not a message of user"):
        record(member, model, agent_message_id=foreign_message.id)


def test_a_message_of_another_session_is_refused(member, model):
    session, elsewhere = AgentSessionFactory(user=member), AgentSessionFactory(user=member)
    message = AgentMessageFactory(session=elsewhere)
    with pytest.raises(services.UsageError, match="is not a message of agent session"):
        record(member, model, agent_session_id=session.id, agent_message_id=message.id)


def test_an_agent_message_carries_at_most_one_usage(member, model):
    session = AgentSessionFactory(user=member)
    message = AgentMessageFactory(session=session, role="assistant")
    usage_id = record(member, model, agent_message_id=message.id, request_id="m-1")
    row = AIUsageRequest.objects.get(pk=usage_id)
    assert (row.agent_session_id, row.agent_message_id) == (session.id, message.id)
    assert AIUsageRequestKey.objects.get(pk=usage_id).agent_message_id == message.id
    assert record(member, model, agent_message_id=message.id, request_id="m-1") == usage_id
    with pytest.raises(services.UsageError) as refused:
        record(member, model, agent_message_id=message.id, request_id="m-2")
    assert refused.value.message == f"agent message {message.id} already has a usage record"


# Who may record ----------------------------------------------------------------------------------


def test_another_user_may_not_record_for_someone(member, model):
    before = snapshot(member)
    with pytest.raises(services.UsageError) as refused:
        record(member, model, as_user=UserFactory())
    assert (refused.value.code, refused.value.message) == (
        services.FORBIDDEN,
        services.NOT_ALLOWED,
    )
    with pytest.raises(services.UsageError):
        record(member, model, as_user=AnonymousUser())
    assert snapshot(member) == before


@pytest.mark.parametrize("staff", [False, True], ids=["the-user", "staff"])
def test_a_request_whose_credential_may_not_record_is_refused(member, model, staff):
    """The user's own page or token without the recording permission, or staff: nobody but a
    credential that may record (or the service context) reports token counts."""
    caller = UserFactory(is_staff=True) if staff else member
    before = snapshot(member)
    with (
        pytest.raises(services.UsageError) as refused,
        transaction.atomic(),
        rls.user_context(caller),
    ):
        services.usage_record(
            user_id=member.id,
            provider_id=model.provider_id,
            model_id=model.id,
            input_tokens=1,
            output_tokens=1,
        )
    assert refused.value.code == services.FORBIDDEN
    assert snapshot(member) == before


def test_the_database_refuses_an_anonymous_caller_with_42501(member, model):
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        rls.user_context(AnonymousUser()),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT record_ai_usage(p_user_id => %s, p_provider_id => %s, p_model_id => %s,"
            " p_input_tokens => 1, p_output_tokens => 1)",
            [member.id, model.provider_id, model.id],
        )
    assert refused.value.__cause__.sqlstate == "42501"


def test_only_the_service_context_may_place_a_record_in_time(member, model):
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(services.UsageError) as refused:
        record(member, model, created_at=yesterday)
    assert refused.value.code == services.FORBIDDEN
    with pytest.raises(services.UsageError):
        record(member, model, created_at=yesterday, as_user=UserFactory(is_staff=True))
    usage_id = record(member, model, created_at=yesterday, service=True)
    assert AIUsageRequest.objects.get(pk=usage_id).created_at == yesterday


def test_the_runtime_role_cannot_write_usage_tables_directly(member):
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        rls.user_context(member),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE ai_usage_daily SET request_count = 0")


# UTC days and months -----------------------------------------------------------------------------


def test_utc_day_boundaries_land_in_the_right_daily_rows(member, model):
    midnight = datetime(2026, 3, 10, tzinfo=UTC)
    record(member, model, created_at=midnight - timedelta(microseconds=1), service=True)
    record(member, model, created_at=midnight, service=True)
    record(member, model, created_at=midnight + timedelta(hours=23, minutes=59), service=True)
    days = dict(AIUsageDaily.objects.filter(user=member).values_list("usage_date", "request_count"))
    assert days == {date(2026, 3, 9): 1, date(2026, 3, 10): 2}


def test_utc_month_boundaries_land_in_the_right_monthly_rows(member, model):
    first = datetime(2026, 2, 1, tzinfo=UTC)
    record(member, model, created_at=first - timedelta(microseconds=1), service=True)
    record(member, model, created_at=first, service=True)
    months = set(
        AIUsageMonthly.objects.filter(user=member).values_list("year", "month", "request_count")
    )
    assert months == {(2026, 1, 1), (2026, 2, 1)}


def test_days_are_utc_whatever_the_sessions_time_zone(member, model):
    moment = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # still March 9th in Los Angeles
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL TIME ZONE 'America/Los_Angeles'")
        record(member, model, created_at=moment, service=True)
    assert AIUsageDaily.objects.get(user=member).usage_date == date(2026, 3, 10)


def test_rows_outside_the_quota_period_are_not_booked_on_it(member, model):
    quota = UserQuota.objects.get(user=member)
    record(member, model, created_at=quota.period_start - timedelta(seconds=1), service=True)
    assert UserQuota.objects.get(user=member).tokens_used == 0
    record(member, model, created_at=quota.period_start, service=True)
    assert UserQuota.objects.get(user=member).tokens_used == 1_500


# Activity summary --------------------------------------------------------------------------------


def _summary(user, days: int = 30, *, as_user=None) -> list[selectors.DayActivity]:
    with transaction.atomic(), rls.user_context(as_user or user):
        return selectors.activity_summary(user_id=user.id, days=days)


def test_the_summary_has_one_row_per_day_with_zeros_on_idle_days(member, model):
    now = datetime.now(UTC)
    today = now.date()
    three_days_ago = now - timedelta(days=3)
    record(member, model, input_tokens=100, output_tokens=20)
    record(member, model, input_tokens=1, output_tokens=1, status="error")
    record(member, model, created_at=three_days_ago, service=True)
    AgentSessionFactory(user=member)
    session = AgentSessionFactory(user=member)
    AgentSession.objects.filter(pk=session.pk).update(started_at=three_days_ago)
    message = AgentMessageFactory(session=AgentSessionFactory(user=member))
    AgentMessage.objects.filter(pk=message.pk).update(created_at=three_days_ago)

    summary = _summary(member, days=7)

    assert [row.day for row in summary] == [today - timedelta(days=n) for n in range(6, -1, -1)]
    by_day = {row.day: row for row in summary}
    latest = by_day[today]
    assert (latest.requests, latest.failures, latest.tokens) == (2, 1, 122)
    assert latest.cost == sum(
        AIUsageRequest.objects.filter(user=member, created_at__date=today).values_list(
            "cost", flat=True
        )
    )
    assert (latest.sessions_started, latest.messages) == (2, 0)
    earlier = by_day[three_days_ago.date()]
    assert (earlier.requests, earlier.tokens, earlier.sessions_started, earlier.messages) == (
        1,
        1_500,
        1,
        1,
    )
    idle = by_day[today - timedelta(days=1)]
    assert (idle.requests, idle.failures, idle.tokens, idle.cost) == (0, 0, 0, Decimal(0))
    assert (idle.sessions_started, idle.messages) == (0, 0)


def test_the_summary_reads_the_daily_rollup(member, model):
    record(member, model)
    AIUsageDaily.objects.filter(user=member).update(request_count=40, success_count=40)
    assert _summary(member, days=1)[0].requests == 40


@pytest.mark.parametrize("days", [0, -1, 367])
def test_the_summary_window_is_1_to_366_days(member, days):
    with pytest.raises(services.UsageError) as refused:
        _summary(member, days=days)
    assert (refused.value.code, refused.value.message) == (
        services.INVALID,
        f"days must be between 1 and 366, got {days}",
    )


def test_the_summary_of_a_whole_year_and_of_one_day(member):
    assert len(_summary(member, days=366)) == 366
    assert len(_summary(member, days=1)) == 1


def test_the_summary_of_someone_else_is_forbidden(member):
    with pytest.raises(services.UsageError) as refused:
        _summary(member, as_user=UserFactory())
    assert refused.value.code == services.FORBIDDEN


# Concurrency -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("with_quota", [True, False], ids=["quota", "no-quota"])
def test_concurrent_duplicates_record_once(with_quota):
    """Retries racing each other: one row, one id for all (with or without a quota lock)."""
    user = UserFactory()
    if with_quota:
        quota_for(user, "free")
    model = catalog_model("gpt-5-mini")
    count = 8
    barrier = threading.Barrier(count)
    ids: list[int] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def retry() -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            usage_id = record(user, model, request_id="raced")
            with lock:
                ids.append(usage_id)
        except Exception as exc:  # collected and asserted on below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=retry) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(ids) == count
    assert len(set(ids)) == 1
    assert AIUsageRequest.objects.filter(user=user).count() == 1
    assert AIUsageDaily.objects.get(user=user).request_count == 1
    assert AIUsageMonthly.objects.get(user=user).request_count == 1
    if with_quota:
        assert UserQuota.objects.get(user=user).tokens_used == 1_500
