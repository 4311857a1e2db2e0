"""Quotas: check_and_consume_quota, roll_quota_forward, raise_quota_alerts, get_remaining_quota.

Calls run as the runtime role in a real identity context (``rls.user_context``), except where
the service context is the point.
"""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, connections, transaction

from billing import errors, selectors, services
from billing.models import (
    QuotaReservation,
    SubscriptionTier,
    UsageAlert,
    UserQuota,
    UserSubscription,
)
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, quota_for

pytestmark = pytest.mark.django_db


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def _previous_month(start: datetime) -> datetime:
    return (start - timedelta(days=1)).replace(day=1)


def consume(user, tokens: int, cost: str = "0", *, as_user=None) -> services.QuotaDecision:
    """check_and_consume_quota for ``user``, called by ``as_user`` (default: the user)."""
    with transaction.atomic(), rls.user_context(as_user or user, may_record=True):
        return services.quota_consume(user_id=user.id, tokens=tokens, cost=Decimal(cost))


def _quota(user) -> UserQuota:
    return UserQuota.objects.get(user=user)


def _subscribe(user, tier_slug: str, status: str = "active") -> UserSubscription:
    now = datetime.now(UTC)
    return UserSubscription.objects.create(
        user=user,
        tier=SubscriptionTier.objects.get(slug=tier_slug),
        status=status,
        current_period_start=_month_start(now),
        current_period_end=_next_month(_month_start(now)),
    )


def _alerts(user) -> set[tuple[str, str]]:
    return set(UsageAlert.objects.filter(user=user).values_list("alert_type", "metric"))


@pytest.fixture
def free_user(user):
    quota_for(user, "free")  # 100 000 tokens, $1.00
    return user


# Reservation -------------------------------------------------------------------------------------


def test_a_reservation_within_the_quota_is_allowed_and_booked(free_user):
    decision = consume(free_user, 1_000, "0.01")
    reservation = QuotaReservation.objects.get(user=free_user)
    assert decision == services.QuotaDecision(
        allowed=True,
        tokens_remaining=99_000,
        cost_remaining=Decimal("0.99"),
        reason=None,
        reservation_id=reservation.pk,
        expires_at=reservation.expires_at,
    )
    assert (reservation.tokens, reservation.cost) == (1_000, Decimal("0.01"))
    assert reservation.expires_at == reservation.created_at + timedelta(minutes=15)
    assert reservation.settled_at is reservation.released_at is None
    quota = _quota(free_user)
    assert (quota.tokens_used, quota.cost_used) == (1_000, Decimal("0.01"))
    assert reservation.period_start == quota.period_start


def test_too_many_tokens_are_refused_and_nothing_changes(free_user):
    consume(free_user, 60_000)
    decision = consume(free_user, 40_001, "0.01")
    assert not decision.allowed
    assert decision.reason == services.REASON_TOKENS_EXCEEDED
    assert decision.tokens_remaining == 40_000
    quota = _quota(free_user)
    assert (quota.tokens_used, quota.cost_used) == (60_000, Decimal(0))


def test_too_much_cost_is_refused_and_nothing_changes(free_user):
    decision = consume(free_user, 10, "1.000001")
    assert (decision.allowed, decision.reason) == (False, services.REASON_COST_EXCEEDED)
    assert (decision.reservation_id, decision.expires_at) == (None, None)
    assert decision.cost_remaining == Decimal("1.00")
    assert _quota(free_user).tokens_used == 0
    assert not QuotaReservation.objects.filter(user=free_user).exists()


def test_a_reservation_may_use_the_quota_up_exactly_and_no_further(free_user):
    decision = consume(free_user, 100_000, "1.00")
    assert (decision.allowed, decision.tokens_remaining, decision.cost_remaining) == (
        True,
        0,
        Decimal(0),
    )
    assert consume(free_user, 1).reason == services.REASON_TOKENS_EXCEEDED
    assert consume(free_user, 0, "0.000001").reason == services.REASON_COST_EXCEEDED
    assert consume(free_user, 0).allowed  # an empty estimate always fits
    quota = _quota(free_user)
    assert (quota.tokens_used, quota.cost_used) == (100_000, Decimal("1.00"))


def test_without_a_quota_nothing_is_allowed(user):
    decision = consume(user, 1)
    assert (decision.allowed, decision.reason) == (False, services.REASON_NO_QUOTA)


@pytest.mark.parametrize(("tokens", "cost"), [(-1, "0"), (1, "-0.01")])
def test_a_negative_estimate_is_invalid(free_user, tokens, cost):
    with pytest.raises(errors.QuotaError) as refused:
        consume(free_user, tokens, cost)
    assert refused.value.code == errors.INVALID
    assert "non-negative" in refused.value.message
    assert _quota(free_user).tokens_used == 0


# Who may call ------------------------------------------------------------------------------------


def test_another_user_may_not_consume_someone_elses_quota(free_user):
    with pytest.raises(errors.QuotaError) as refused:
        consume(free_user, 1, as_user=UserFactory())
    assert (refused.value.code, refused.value.message) == (errors.FORBIDDEN, errors.NOT_ALLOWED)
    assert _quota(free_user).tokens_used == 0


def test_the_database_itself_refuses_another_user_with_42501(free_user):
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        rls.user_context(UserFactory()),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT * FROM check_and_consume_quota(p_user_id => %s, p_tokens => 1, p_cost => 0)",
            [free_user.id],
        )
    assert refused.value.__cause__.sqlstate == "42501"


def test_an_anonymous_caller_is_refused(free_user):
    with pytest.raises(errors.QuotaError) as refused:
        consume(free_user, 1, as_user=AnonymousUser())
    assert refused.value.code == errors.FORBIDDEN


def test_an_admin_may_not_reserve_for_a_user(free_user):
    """Reserving is recording's first half: only the service context or the user's own
    credential that may record (README "Who may record usage"), never staff as such."""
    staff = UserFactory(is_staff=True)
    with pytest.raises(errors.QuotaError) as refused:
        consume(free_user, 5, as_user=staff)
    assert refused.value.code == errors.FORBIDDEN
    assert _quota(free_user).tokens_used == 0


def test_the_user_without_the_recording_permission_may_not_reserve(free_user):
    with (
        pytest.raises(errors.QuotaError) as refused,
        transaction.atomic(),
        rls.user_context(free_user),
    ):
        services.quota_consume(user_id=free_user.id, tokens=5, cost=Decimal(0))
    assert refused.value.code == errors.FORBIDDEN
    assert _quota(free_user).tokens_used == 0


def test_the_service_context_may_act_for_a_user(free_user):
    with transaction.atomic(), rls.service_context():
        assert services.quota_consume(user_id=free_user.id, tokens=5, cost=Decimal(0)).allowed


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE user_quotas SET tokens_used = 0",
        "INSERT INTO usage_alerts (user_id, alert_type, metric, threshold_percent, period_start,"
        " value_at_trigger, limit_at_trigger) VALUES (1, 'warning', 'tokens', 80, now(), 0, 0)",
        "SELECT * FROM quota_tier_limits(1)",
    ],
)
def test_the_runtime_role_cannot_go_around_the_functions(free_user, statement):
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        rls.user_context(free_user),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


# Roll-forward ------------------------------------------------------------------------------------


def _expire(user, *, tokens_used: int = 90_000) -> datetime:
    """Move the user's quota into last month, mostly used; return the old period's start."""
    this_month = _month_start(datetime.now(UTC))
    last_month = _previous_month(this_month)
    UserQuota.objects.filter(user=user).update(
        period_start=last_month, period_end=this_month, tokens_used=tokens_used
    )
    return last_month


def test_an_ended_period_rolls_forward_to_the_current_utc_month_with_the_tiers_limits(free_user):
    _subscribe(free_user, "pro")
    old_start = _expire(free_user)
    stale = UsageAlert.objects.create(
        user=free_user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=old_start,
        value_at_trigger=90_000,
        limit_at_trigger=100_000,
    )

    decision = consume(free_user, 1_000, "0.05")

    assert decision.allowed
    pro = SubscriptionTier.objects.get(slug="pro")
    quota = _quota(free_user)
    this_month = _month_start(datetime.now(UTC))
    assert (quota.period_start, quota.period_end) == (this_month, _next_month(this_month))
    assert (quota.tokens_limit, quota.cost_limit) == (
        pro.monthly_token_limit,
        pro.monthly_cost_limit,
    )
    assert (quota.tokens_used, quota.cost_used) == (1_000, Decimal("0.05"))
    stale.refresh_from_db()
    assert stale.resolved_at is not None


def test_without_a_current_subscription_the_roll_forward_uses_the_free_tier(user):
    quota_for(user, "pro")
    _subscribe(user, "pro", status="canceled")
    _expire(user)
    with transaction.atomic(), rls.user_context(user):
        assert services.quota_roll_forward(user_id=user.id) is True
        assert services.quota_roll_forward(user_id=user.id) is False
    free = SubscriptionTier.objects.get(slug="free")
    quota = _quota(user)
    assert (quota.tokens_limit, quota.tokens_used) == (free.monthly_token_limit, 0)


def test_a_running_period_does_not_roll_and_keeps_its_alerts(free_user):
    consume(free_user, 85_000)
    assert _alerts(free_user) == {("warning", "tokens")}
    with transaction.atomic(), rls.user_context(free_user):
        assert services.quota_roll_forward(user_id=free_user.id) is False
    assert _quota(free_user).tokens_used == 85_000
    assert UsageAlert.objects.get(user=free_user).resolved_at is None


def test_a_period_ending_exactly_now_rolls(free_user):
    with transaction.atomic(), connection.cursor() as cursor:
        # now() is the transaction's start: a period ending at it has ended.
        cursor.execute(
            "UPDATE user_quotas SET period_start = now() - interval '1 month', period_end = now(),"
            " tokens_used = 5 WHERE user_id = %s",
            [free_user.id],
        )
        cursor.execute("SELECT roll_quota_forward(p_user_id => %s)", [free_user.id])
        assert cursor.fetchone()[0] is True
    assert _quota(free_user).tokens_used == 0


# Alerts ------------------------------------------------------------------------------------------


def test_alerts_fire_once_at_80_and_100_percent(free_user):
    consume(free_user, 79_999)
    assert _alerts(free_user) == set()
    consume(free_user, 1)  # exactly 80 %
    assert _alerts(free_user) == {("warning", "tokens")}
    for _ in range(3):
        consume(free_user, 1)
    assert UsageAlert.objects.filter(user=free_user).count() == 1
    consume(free_user, 100_000 - 80_003)  # exactly 100 %
    consume(free_user, 1)  # refused: changes nothing, raises nothing
    assert _alerts(free_user) == {("warning", "tokens"), ("exceeded", "tokens")}

    warning = UsageAlert.objects.get(user=free_user, alert_type="warning")
    exceeded = UsageAlert.objects.get(user=free_user, alert_type="exceeded")
    assert (warning.threshold_percent, warning.value_at_trigger, warning.limit_at_trigger) == (
        80,
        80_000,
        100_000,
    )
    assert (exceeded.threshold_percent, exceeded.value_at_trigger) == (100, 100_000)
    assert warning.period_start == _quota(free_user).period_start
    assert warning.resolved_at is None


def test_cost_alerts_are_separate_from_token_alerts(free_user):
    consume(free_user, 10, "0.85")
    assert _alerts(free_user) == {("warning", "cost")}
    consume(free_user, 10, "0.15")
    assert _alerts(free_user) == {("warning", "cost"), ("exceeded", "cost")}
    assert UsageAlert.objects.get(
        user=free_user, alert_type="exceeded"
    ).limit_at_trigger == Decimal("1.00")


def test_raising_alerts_again_creates_nothing(free_user):
    consume(free_user, 100_000)
    with transaction.atomic(), rls.user_context(free_user), connection.cursor() as cursor:
        cursor.execute("SELECT raise_quota_alerts(p_user_id => %s)", [free_user.id])
        assert cursor.fetchone()[0] == 0
    assert UsageAlert.objects.filter(user=free_user).count() == 2


def test_a_new_period_can_alert_again(free_user):
    consume(free_user, 90_000)
    # As if all that had happened last month.
    old_start = _expire(free_user, tokens_used=90_000)
    UsageAlert.objects.filter(user=free_user).update(period_start=old_start)
    consume(free_user, 90_000)
    alerts = UsageAlert.objects.filter(user=free_user, alert_type="warning", metric="tokens")
    assert alerts.count() == 2
    assert alerts.filter(resolved_at__isnull=True).count() == 1


# Remaining ---------------------------------------------------------------------------------------


def _remaining(user, *, as_user=None):
    with transaction.atomic(), rls.user_context(as_user or user):
        return selectors.quota_remaining(user_id=user.id)


def test_remaining_reports_limits_use_and_percentages(free_user):
    consume(free_user, 12_345, "0.333333")
    remaining = _remaining(free_user)
    quota = _quota(free_user)
    assert remaining == selectors.QuotaRemaining(
        tokens_limit=100_000,
        tokens_used=12_345,
        tokens_remaining=87_655,
        tokens_percent_used=Decimal("12.35"),
        cost_limit=Decimal("1.00"),
        cost_used=Decimal("0.333333"),
        cost_remaining=Decimal("0.666667"),
        cost_percent_used=Decimal("33.33"),
        period_start=quota.period_start,
        period_end=quota.period_end,
    )


def test_remaining_is_never_negative(free_user):
    UserQuota.objects.filter(user=free_user).update(tokens_used=150_000)
    remaining = _remaining(free_user)
    assert (remaining.tokens_remaining, remaining.tokens_percent_used) == (0, Decimal("150.00"))


def test_remaining_of_an_ended_period_reports_the_new_period_without_writing(free_user):
    _subscribe(free_user, "pro")
    _expire(free_user)
    remaining = _remaining(free_user)
    this_month = _month_start(datetime.now(UTC))
    assert (remaining.period_start, remaining.period_end) == (this_month, _next_month(this_month))
    assert (remaining.tokens_used, remaining.tokens_limit) == (0, 5_000_000)
    assert remaining.tokens_percent_used == Decimal(0)
    assert _quota(free_user).tokens_used == 90_000  # the stored row is untouched


def test_a_zero_limit_has_no_percentage(free_user):
    UserQuota.objects.filter(user=free_user).update(cost_limit=0)
    assert _remaining(free_user).cost_percent_used is None


def test_remaining_without_a_quota_is_none(user):
    assert _remaining(user) is None


def test_remaining_of_someone_else_is_forbidden(free_user):
    with pytest.raises(errors.QuotaError) as refused:
        _remaining(free_user, as_user=UserFactory())
    assert refused.value.code == errors.FORBIDDEN
    with pytest.raises(errors.QuotaError):
        _remaining(free_user, as_user=AnonymousUser())


# Concurrency -------------------------------------------------------------------------------------


def _run_together(count: int, work) -> tuple[list, list]:
    """Run ``work()`` in ``count`` threads, each on its own connection, released together."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list = []
    lock = threading.Lock()

    def thread_main() -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            outcome = work()
            with lock:
                results.append(outcome)
        except Exception as exc:  # collected and asserted on by the test
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=thread_main) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_reservations_never_overspend():
    user = UserFactory()
    quota_for(user, "free")
    limit, step, consumers = 1_000, 100, 16
    UserQuota.objects.filter(user=user).update(tokens_limit=limit)

    def reserve() -> bool:
        with transaction.atomic(), rls.user_context(user, may_record=True):
            return services.quota_consume(user_id=user.id, tokens=step, cost=Decimal(0)).allowed

    results, errors = _run_together(consumers, reserve)
    assert errors == []
    assert results.count(True) == limit // step
    assert results.count(False) == consumers - limit // step
    quota = _quota(user)
    assert quota.tokens_used == limit
    assert quota.tokens_used <= quota.tokens_limit
    # Crossing 80 % and reaching 100 % raced too: still one alert of each.
    assert UsageAlert.objects.filter(user=user).count() == 2
