"""generate_monthly_report(month) and the plan a user is counted under in a monthly report.

The rule (billing/sql/0008_monthly_reports.sql): the subscription that was the user's plan for
the longest part of the month, the later one on a tie. The function is called the way the
command and monthly_maintenance() call it: inside ``transaction.atomic()`` and
``rls.service_context()``, as the runtime role. Rows are written by the test connection outside
any context (the owner).
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from billing.models import SubscriptionTier, UserSubscription
from usage.models import AIUsageDaily
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, catalog_model

pytestmark = pytest.mark.django_db

# A past month of 30 days: every test here is about April 2026.
APRIL = date(2026, 4, 1)
MAY = date(2026, 5, 1)


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _generate(month: date) -> int:
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.generate_monthly_report(%s)", [month])
        return cursor.fetchone()[0]


def _monthly_maintenance() -> dict:
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.monthly_maintenance()")
        value = cursor.fetchone()[0]
    return json.loads(value) if isinstance(value, str) else value


def _report(month: date, dimension: str = "tier") -> dict[str, tuple]:
    """{key: (requests, cost, users, subscribers)} of one dimension of the stored report."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, requests, cost, users, subscribers FROM usage_monthly_reports"
            " WHERE year = %s AND month = %s AND dimension = %s",
            [month.year, month.month, dimension],
        )
        return {key: tuple(rest) for key, *rest in cursor.fetchall()}


def _plan(user, slug, start, *, end=None, status="active", updated=None, **fields):
    """A subscription that became the user's plan at ``start`` (created then)."""
    if updated:
        fields["updated_at"] = updated
    return UserSubscription.objects.create(
        user=user,
        tier=SubscriptionTier.objects.get(slug=slug),
        status=status,
        current_period_start=start,
        current_period_end=end or start + timedelta(days=30),
        created_at=start,
        **fields,
    )


def _used(user, day: date, requests: int = 1, cost: str = "1.000000") -> None:
    model = catalog_model("gpt-5-mini")
    AIUsageDaily.objects.create(
        user=user,
        usage_date=day,
        provider_id=model.provider_id,
        model=model,
        request_count=requests,
        success_count=requests,
        input_tokens=100 * requests,
        total_tokens=100 * requests,
        cost=Decimal(cost),
    )


# --- the plan in force for most of the month -------------------------------------------------


def test_a_pro_user_downgraded_on_the_last_day_counts_as_pro():
    user = UserFactory()
    pro = _plan(user, "pro", at(APRIL) - timedelta(days=10), status="canceled")
    # Deleted by the provider at noon on April 30th: on free from then on.
    last_day = at(date(2026, 4, 30), 12)
    UserSubscription.objects.filter(pk=pro.pk).update(updated_at=last_day)
    _plan(user, "free", last_day)
    _used(user, date(2026, 4, 3), requests=4, cost="2.000000")
    _used(user, date(2026, 4, 30), requests=1, cost="0.500000")

    assert _generate(APRIL) == 4  # tier, provider, model and total
    assert _report(APRIL) == {"pro": (5, Decimal("2.500000"), 1, 1)}


def test_a_user_upgraded_on_the_second_counts_under_the_new_plan():
    user = UserFactory()
    _plan(user, "free", at(APRIL) - timedelta(days=40), status="canceled")
    _plan(user, "team", at(date(2026, 4, 2)))
    _used(user, date(2026, 4, 1))

    _generate(APRIL)

    assert _report(APRIL) == {"team": (1, Decimal("1.000000"), 1, 1)}


def test_a_tie_goes_to_the_later_plan():
    user = UserFactory()
    _plan(user, "pro", at(APRIL) - timedelta(days=3), status="canceled")
    _plan(user, "free", at(date(2026, 4, 16)))  # 15 days each
    _used(user, date(2026, 4, 5))

    _generate(APRIL)

    assert _report(APRIL) == {"free": (1, Decimal("1.000000"), 1, 1)}


def test_an_ended_plan_with_no_successor_ends_at_its_period_end():
    user = UserFactory()
    # Pro for the first 10 days of April, then nothing: the user still counts as pro.
    _plan(
        user, "pro", at(APRIL) - timedelta(days=20), end=at(date(2026, 4, 11)),
        status="canceled", updated=at(MAY) + timedelta(days=3),
    )  # fmt: skip
    _generate(APRIL)
    assert _report(APRIL) == {"pro": (0, Decimal("0"), 0, 1)}


def test_subscribers_count_every_user_on_a_plan_during_the_month_with_usage_or_not():
    active, idle, later = UserFactory(), UserFactory(), UserFactory()
    _plan(active, "pro", at(APRIL) - timedelta(days=5))
    _plan(idle, "pro", at(APRIL) - timedelta(days=5))
    _plan(later, "pro", at(MAY) + timedelta(days=1))  # joined after April: not in its report
    _used(active, date(2026, 4, 9), requests=3, cost="1.500000")

    _generate(APRIL)

    assert _report(APRIL) == {"pro": (3, Decimal("1.500000"), 1, 2)}
    assert _report(APRIL, "total") == {"all": (3, Decimal("1.500000"), 1, 2)}


def test_usage_before_any_subscription_counts_under_the_current_plan_else_free():
    on_pro, on_nothing = UserFactory(), UserFactory()
    _plan(on_pro, "pro", at(MAY) + timedelta(days=2))
    _used(on_pro, date(2026, 4, 9))
    _used(on_nothing, date(2026, 4, 9))

    _generate(APRIL)

    assert _report(APRIL) == {
        "pro": (1, Decimal("1.000000"), 1, 1),
        "free": (1, Decimal("1.000000"), 1, 1),
    }


def test_an_empty_month_stores_its_total_row_and_a_rerun_changes_nothing():
    assert _generate(APRIL) == 1
    assert _report(APRIL, "total") == {"all": (0, Decimal("0"), 0, 0)}
    assert _generate(APRIL) == 0


def test_a_rerun_follows_a_changed_history():
    user = UserFactory()
    sub = _plan(user, "pro", at(APRIL) - timedelta(days=5))
    _used(user, date(2026, 4, 9))
    _generate(APRIL)
    # The history is corrected: the user was on team all along.
    UserSubscription.objects.filter(pk=sub.pk).update(
        tier=SubscriptionTier.objects.get(slug="team")
    )

    assert _generate(APRIL) == 2  # tier/team inserted, tier/pro removed
    assert _report(APRIL) == {"team": (1, Decimal("1.000000"), 1, 1)}


# --- the maintenance path ---------------------------------------------------------------------


def _db(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def test_monthly_maintenance_counts_a_downgrade_at_the_months_end_under_the_old_plan():
    """The scheduled downgrade happens in the same run, before the report is made."""
    this_month = _db("SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
    last_month = _db("SELECT %s - interval '1 month'", [this_month])
    user = UserFactory()
    # Pro since before last month, set to move to free when its period ends (this month's 1st).
    _plan(user, "pro", last_month - timedelta(days=20), end=this_month, cancel_at_period_end=True)
    _used(user, last_month.date() + timedelta(days=4))

    summary = _monthly_maintenance()

    assert summary["subscriptions_canceled"] == 1  # the user is on free now
    assert _report(last_month.date()) == {"pro": (1, Decimal("1.000000"), 1, 1)}


# --- who may, and what is refused -------------------------------------------------------------


@pytest.mark.parametrize("who", ["user", "admin", "anonymous"])
def test_only_the_service_context_generates(who):
    caller = {"user": UserFactory(), "admin": UserFactory(is_staff=True), "anonymous": None}[who]
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(caller),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT public.generate_monthly_report(%s)", [APRIL])
    assert caught.value.__cause__.sqlstate == "42501"
    assert _db("SELECT count(*) FROM usage_monthly_reports") == 0


@pytest.mark.parametrize(
    ("month", "message"),
    [
        (date(2026, 4, 2), "give the first day of a month"),
        (date(1999, 12, 1), "reports cover months from 2000-01 on"),
        (date(2999, 1, 1), "2999-01 has not ended yet"),
    ],
)
def test_a_month_that_cannot_be_reported_is_refused(month, message):
    with pytest.raises(DatabaseError) as caught:
        _generate(month)
    assert caught.value.__cause__.sqlstate == "22023"
    assert message in str(caught.value)
    assert _db("SELECT count(*) FROM usage_monthly_reports") == 0


def test_the_month_still_running_is_refused():
    this_month = _db("SELECT (date_trunc('month', now() AT TIME ZONE 'UTC'))::date")
    with pytest.raises(DatabaseError) as caught:
        _generate(this_month)
    assert "has not ended yet" in str(caught.value)
