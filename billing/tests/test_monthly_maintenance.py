"""monthly_maintenance() and its command: subscriptions, quotas, alerts and the monthly report.

The function is called the way the command calls it: inside ``transaction.atomic()`` and
``rls.service_context()``, as the runtime role. Rows are made old by the test connection outside
any context, which is the owner (it bypasses row-level security).
"""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from billing.models import SubscriptionTier, UsageAlert, UserQuota, UserSubscription
from usage.models import AIUsageDaily
from witchcraft.platform import rls
from witchcraft.platform.maintenance_command import DRY_RUN_NOTICE
from witchcraft.testing.factories import UserFactory, catalog_model, quota_for
from witchcraft.testing.maintenance import (
    CONTEXTS,
    SERVICE_ONLY,
    run_as_owner,
    runtime_role_outcomes,
)

pytestmark = pytest.mark.django_db

ZEROS = {
    "quotas_rolled": 0,
    "alerts_resolved": 0,
    "subscriptions_canceled": 0,
    "subscriptions_downgraded": 0,
    "subscriptions_expired": 0,
    "subscriptions_renewed": 0,
    "report_rows": 0,
}


def _monthly() -> dict:
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.monthly_maintenance()")
        value = cursor.fetchone()[0]
    return json.loads(value) if isinstance(value, str) else value


def _db(sql: str, params=()):
    """One value, read by the owner (outside any RLS context)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


@pytest.fixture
def now() -> datetime:
    """The database's now(): the test's transaction start, which the function also sees."""
    return _db("SELECT now()")


@pytest.fixture
def this_month(now) -> datetime:
    return _db("SELECT date_trunc('month', %s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'", [now])


def _months(at: datetime, n: int) -> datetime:
    """``at`` plus n calendar months, in UTC (as the SQL computes it)."""
    return _db(
        "SELECT (%s AT TIME ZONE 'UTC' + make_interval(months => %s)) AT TIME ZONE 'UTC'",
        [at, n],
    )


def _tier(slug: str) -> SubscriptionTier:
    return SubscriptionTier.objects.get(slug=slug)


def _subscription(user, tier_slug, status, start, end, **fields) -> UserSubscription:
    return UserSubscription.objects.create(
        user=user,
        tier=_tier(tier_slug),
        status=status,
        current_period_start=start,
        current_period_end=end,
        **fields,
    )


def _ended_quota(user, this_month, tier_slug="free", **fields) -> UserQuota:
    """A quota of last month (its period ended when this month began)."""
    quota = quota_for(user, tier_slug, now=_months(this_month, -1))
    if fields:
        UserQuota.objects.filter(pk=quota.pk).update(**fields)
    return quota


def _alert(user, period_start, alert_type="warning", metric="tokens", **fields) -> UsageAlert:
    return UsageAlert.objects.create(
        user=user,
        alert_type=alert_type,
        metric=metric,
        threshold_percent=80 if alert_type == "warning" else 100,
        period_start=period_start,
        value_at_trigger=Decimal(90),
        limit_at_trigger=Decimal(100),
        **fields,
    )


# --- quotas and alerts ------------------------------------------------------------------------


def test_rolls_ended_quotas_to_this_month_with_the_current_plan_limits(now, this_month):
    on_free = UserFactory()
    _ended_quota(on_free, this_month, tokens_used=90_000, cost_used=Decimal("0.9"))
    on_pro = UserFactory()
    _ended_quota(on_pro, this_month, "free", tokens_used=5)
    _subscription(on_pro, "pro", "active", this_month, _months(this_month, 1))
    running = UserFactory()
    quota_for(running, "free", now=now)
    UserQuota.objects.filter(pk=running.pk).update(tokens_used=10)
    running_before = UserQuota.objects.values().get(pk=running.pk)

    summary = _monthly()

    assert summary["quotas_rolled"] == 2
    free, pro = _tier("free"), _tier("pro")
    for user, tier in ((on_free, free), (on_pro, pro)):
        quota = UserQuota.objects.get(pk=user.pk)
        assert (quota.period_start, quota.period_end) == (this_month, _months(this_month, 1))
        assert (quota.tokens_used, quota.cost_used) == (0, 0)
        assert (quota.tokens_limit, quota.cost_limit) == (
            tier.monthly_token_limit,
            tier.monthly_cost_limit,
        )
    assert UserQuota.objects.values().get(pk=running.pk) == running_before


def test_resolves_the_open_alerts_of_the_ended_periods_only(now, this_month):
    last_month = _months(this_month, -1)
    user = UserFactory()
    _ended_quota(user, this_month)
    open_warning = _alert(user, last_month)
    acknowledged = _alert(user, last_month, "exceeded", acknowledged_at=now)
    long_resolved = _alert(user, _months(this_month, -2), resolved_at=now - timedelta(days=40))
    other = UserFactory()
    quota_for(other, now=now)
    current = _alert(other, this_month)

    summary = _monthly()

    assert summary["alerts_resolved"] == 2
    resolved = dict(UsageAlert.objects.values_list("pk", "resolved_at"))
    assert resolved[open_warning.pk] == resolved[acknowledged.pk] == now
    assert resolved[long_resolved.pk] == now - timedelta(days=40)
    assert resolved[current.pk] is None


# --- subscriptions ----------------------------------------------------------------------------


def _current(user) -> UserSubscription:
    return UserSubscription.objects.get(user=user, status__in=["trialing", "active", "past_due"])


def test_a_subscription_canceling_at_period_end_is_canceled_and_the_user_moves_to_free(
    now, this_month
):
    user = UserFactory()
    _ended_quota(user, this_month, "pro")
    ended = now - timedelta(days=1)
    old = _subscription(user, "pro", "active", _months(ended, -1), ended, cancel_at_period_end=True)

    summary = _monthly()

    assert summary["subscriptions_canceled"] == 1
    old.refresh_from_db()
    assert (old.status, old.canceled_at) == ("canceled", now)
    new = _current(user)
    assert (new.tier.slug, new.status, new.billing_cycle, new.cancel_at_period_end) == (
        "free",
        "active",
        "monthly",
        False,
    )
    assert (new.current_period_start, new.current_period_end) == (
        this_month,
        _months(this_month, 1),
    )
    # The quota rolled after the plan changed: free limits.
    assert UserQuota.objects.get(pk=user.pk).tokens_limit == _tier("free").monthly_token_limit


def test_canceling_keeps_the_moment_the_user_asked(now):
    user = UserFactory()
    asked = now - timedelta(days=10)
    ended = now - timedelta(hours=1)
    old = _subscription(
        user,
        "pro",
        "trialing",
        _months(ended, -1),
        ended,
        cancel_at_period_end=True,
        canceled_at=asked,
    )
    assert _monthly()["subscriptions_canceled"] == 1
    old.refresh_from_db()
    assert (old.status, old.canceled_at) == ("canceled", asked)


def test_a_subscription_canceling_later_is_left_alone(now):
    user = UserFactory()
    sub = _subscription(
        user, "pro", "active", now - timedelta(days=5), now + timedelta(days=25),
        cancel_at_period_end=True,
    )  # fmt: skip
    before = UserSubscription.objects.values().get(pk=sub.pk)
    # (The report of last month may count the user: its rows are the report's tests' concern.)
    assert _monthly() | {"report_rows": 0} == ZEROS
    assert UserSubscription.objects.values().get(pk=sub.pk) == before
    assert UserSubscription.objects.filter(user=user).count() == 1


def test_past_due_expires_after_a_7_day_grace_and_the_user_moves_to_free(now, this_month):
    late = UserFactory()
    late_end = now - timedelta(days=8)
    late_sub = _subscription(late, "team", "past_due", _months(late_end, -1), late_end)
    in_grace = UserFactory()
    grace_end = now - timedelta(days=2)
    grace_sub = _subscription(in_grace, "pro", "past_due", _months(grace_end, -1), grace_end)

    summary = _monthly()

    assert summary["subscriptions_expired"] == 1
    late_sub.refresh_from_db()
    assert (late_sub.status, late_sub.canceled_at) == ("expired", None)
    assert (_current(late).tier.slug, _current(late).current_period_start) == ("free", this_month)
    grace_sub.refresh_from_db()
    assert (grace_sub.status, grace_sub.current_period_end) == ("past_due", grace_end)
    assert UserSubscription.objects.filter(user=in_grace).count() == 1


@pytest.mark.parametrize(
    ("status", "cycle", "months"),
    [("active", "monthly", 1), ("active", "yearly", 12), ("trialing", "monthly", 1)],
)
def test_an_ended_period_is_renewed_by_one_cycle(now, status, cycle, months):
    user = UserFactory()
    ended = now - timedelta(days=1)
    sub = _subscription(user, "pro", status, _months(ended, -months), ended, billing_cycle=cycle)

    summary = _monthly()

    assert summary["subscriptions_renewed"] == 1
    sub.refresh_from_db()
    assert (sub.status, sub.tier.slug) == ("active", "pro")
    assert (sub.current_period_start, sub.current_period_end) == (ended, _months(ended, months))
    assert UserSubscription.objects.filter(user=user).count() == 1


def test_a_renewal_after_missed_runs_catches_up_to_now(now):
    user = UserFactory()
    ended = now - timedelta(days=75)
    sub = _subscription(user, "pro", "active", _months(ended, -1), ended)

    assert _monthly()["subscriptions_renewed"] == 1
    sub.refresh_from_db()
    assert sub.current_period_start <= now < sub.current_period_end
    assert sub.current_period_end == _months(sub.current_period_start, 1)
    assert sub.current_period_start > ended


# --- the monthly report -----------------------------------------------------------------------


def _daily(user, model, day: date, requests: int, tokens: int, cost: str) -> AIUsageDaily:
    return AIUsageDaily.objects.create(
        user=user,
        usage_date=day,
        provider_id=model.provider_id,
        model=model,
        request_count=requests,
        success_count=requests,
        input_tokens=tokens,
        total_tokens=tokens,
        cost=Decimal(cost),
    )


def _report(year: int, month: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dimension, key, requests, tokens, cost, users FROM usage_monthly_reports"
            " WHERE year = %s AND month = %s",
            [year, month],
        )
        return {(d, k): (r, t, c, u) for d, k, r, t, c, u in cursor.fetchall()}


@pytest.fixture
def usage_last_month(now, this_month):
    """Two users' usage of last month, plus rows just outside it."""
    first = _months(this_month, -1).date()
    last = this_month.date() - timedelta(days=1)
    mini, haiku = catalog_model("gpt-5-mini"), catalog_model("claude-haiku-4-5")
    pro_user, free_user = UserFactory(), UserFactory()
    _subscription(pro_user, "pro", "active", this_month, _months(this_month, 1))
    _subscription(  # an old plan: not the user's current one
        free_user, "team", "canceled", _months(this_month, -3), _months(this_month, -2)
    )
    _daily(pro_user, mini, first, 10, 1000, "0.500000")
    _daily(pro_user, haiku, last, 5, 500, "0.250000")
    _daily(free_user, mini, first + timedelta(days=3), 2, 200, "0.010000")
    _daily(pro_user, mini, this_month.date(), 100, 100_000, "9.000000")  # this month
    _daily(free_user, mini, first - timedelta(days=1), 100, 100_000, "9.000000")  # 2 months ago
    return {"year": first.year, "month": first.month, "pro": pro_user, "free": free_user}


EXPECTED_REPORT = {
    ("provider", "openai"): (12, 1200, Decimal("0.510000"), 2),
    ("provider", "anthropic"): (5, 500, Decimal("0.250000"), 1),
    ("model", "openai/gpt-5-mini"): (12, 1200, Decimal("0.510000"), 2),
    ("model", "anthropic/claude-haiku-4-5"): (5, 500, Decimal("0.250000"), 1),
    ("tier", "pro"): (15, 1500, Decimal("0.750000"), 1),
    ("tier", "free"): (2, 200, Decimal("0.010000"), 1),
    ("total", "all"): (17, 1700, Decimal("0.760000"), 2),
}


def test_stores_last_months_report_per_tier_provider_and_model(usage_last_month):
    summary = _monthly()

    assert summary["report_rows"] == 7
    assert _report(usage_last_month["year"], usage_last_month["month"]) == EXPECTED_REPORT
    assert _db("SELECT count(*) FROM usage_monthly_reports") == 7


def test_a_rerun_updates_changed_rows_and_removes_keys_without_usage(usage_last_month):
    year, month = usage_last_month["year"], usage_last_month["month"]
    assert _monthly()["report_rows"] == 7
    generated = _db("SELECT max(generated_at) FROM usage_monthly_reports")

    # The pro user's plan ended since (no current subscription: reported as free), and one
    # more request of last month arrived.
    UserSubscription.objects.filter(user=usage_last_month["pro"]).update(status="canceled")
    AIUsageDaily.objects.filter(user=usage_last_month["free"], request_count=2).update(
        request_count=3, success_count=3
    )

    # tier/pro removed, tier/free, total/all, provider/openai and model/openai/gpt-5-mini
    # changed.
    assert _monthly()["report_rows"] == 5
    report = _report(year, month)
    assert ("tier", "pro") not in report
    assert report[("tier", "free")] == (18, 1700, Decimal("0.760000"), 2)
    assert report[("provider", "anthropic")] == EXPECTED_REPORT[("provider", "anthropic")]
    assert _db(
        "SELECT generated_at FROM usage_monthly_reports WHERE dimension = 'provider'"
        " AND key = 'anthropic'"
    ) == generated  # fmt: skip


def test_an_empty_month_stores_only_its_total_row():
    assert _monthly() == {**ZEROS, "report_rows": 1}
    assert _db("SELECT count(*) FROM usage_monthly_reports WHERE dimension = 'total'") == 1
    assert _db("SELECT count(*) FROM usage_monthly_reports") == 1
    assert _monthly() == ZEROS


# --- the whole job ----------------------------------------------------------------------------


@pytest.fixture
def month_end_state(now, this_month, usage_last_month):
    """Something for every step of the job."""
    rolled = UserFactory()
    _ended_quota(rolled, this_month, "pro")
    _alert(rolled, _months(this_month, -1))
    ended = now - timedelta(days=9)
    started = _months(ended, -1)  # and created then: each is a plan of part of last month
    _subscription(
        rolled, "pro", "active", started, ended, cancel_at_period_end=True, created_at=started
    )
    expiring = UserFactory()
    _subscription(expiring, "pro", "past_due", started, ended, created_at=started)
    renewing = UserFactory()
    _subscription(renewing, "team", "active", started, ended, created_at=started)


def test_returns_every_count_and_a_second_run_changes_nothing(month_end_state):
    first = _monthly()
    assert first == {
        "quotas_rolled": 1,
        "alerts_resolved": 1,
        "subscriptions_canceled": 1,
        "subscriptions_downgraded": 0,
        "subscriptions_expired": 1,
        "subscriptions_renewed": 1,
        # tier pro, free and team (the renewed plan, no usage), provider, model, total
        "report_rows": 8,
    }
    subscriptions = list(UserSubscription.objects.order_by("pk").values())
    quotas = list(UserQuota.objects.order_by("pk").values())
    alerts = list(UsageAlert.objects.order_by("pk").values())
    report = _db("SELECT array_agg(r ORDER BY dimension, key)::text FROM usage_monthly_reports r")

    assert _monthly() == ZEROS
    assert list(UserSubscription.objects.order_by("pk").values()) == subscriptions
    assert list(UserQuota.objects.order_by("pk").values()) == quotas
    assert list(UsageAlert.objects.order_by("pk").values()) == alerts
    assert (
        _db("SELECT array_agg(r ORDER BY dimension, key)::text FROM usage_monthly_reports r")
        == report
    )


@pytest.mark.parametrize("who", ["user", "admin", "anonymous"])
def test_only_the_service_context_may_run_it(this_month, who):
    user = UserFactory()
    _ended_quota(user, this_month)
    caller = {"user": user, "admin": UserFactory(is_staff=True), "anonymous": None}[who]
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(caller),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT public.monthly_maintenance()")
    assert caught.value.__cause__.sqlstate == "42501"
    assert UserQuota.objects.get(pk=user.pk).period_end == this_month


# --- usage_monthly_reports: row-level security ------------------------------------------------


def _visible_report_rows(caller) -> int:
    with transaction.atomic(), rls.user_context(caller), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_monthly_reports")
        return cursor.fetchone()[0]


def test_only_admins_read_the_reports(usage_last_month):
    _monthly()
    assert _visible_report_rows(UserFactory(is_staff=True)) == 7
    assert _visible_report_rows(usage_last_month["pro"]) == 0
    assert _visible_report_rows(None) == 0


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO usage_monthly_reports (year, month, dimension, key)"
        " VALUES (2026, 1, 'tier', 'x')",
        "UPDATE usage_monthly_reports SET requests = 0",
        "DELETE FROM usage_monthly_reports",
    ],
)
def test_nobody_writes_the_reports_through_the_app_role(sql):
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(UserFactory(is_staff=True)),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert caught.value.__cause__.sqlstate == "42501"


# --- the command ------------------------------------------------------------------------------


def _command(*args: str) -> str:
    out = StringIO()
    call_command("monthly_maintenance", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_command_prints_aligned_counts(month_end_state):
    lines = _command().splitlines()
    assert lines == [
        "subscriptions_canceled:   1",
        "subscriptions_downgraded: 0",
        "subscriptions_expired:    1",
        "subscriptions_renewed:    1",
        "quotas_rolled:            1",
        "alerts_resolved:          1",
        "report_rows:              8",
    ]
    assert json.loads(_command("--json")) == ZEROS


def test_command_dry_run_changes_nothing(month_end_state):
    subscriptions = list(UserSubscription.objects.order_by("pk").values())
    quotas = list(UserQuota.objects.order_by("pk").values())
    alerts = list(UsageAlert.objects.order_by("pk").values())

    lines = _command("--dry-run").splitlines()

    assert lines[0] == DRY_RUN_NOTICE
    assert "subscriptions_canceled:   1" in lines  # what would change
    assert list(UserSubscription.objects.order_by("pk").values()) == subscriptions
    assert list(UserQuota.objects.order_by("pk").values()) == quotas
    assert list(UsageAlert.objects.order_by("pk").values()) == alerts
    assert _db("SELECT count(*) FROM usage_monthly_reports") == 0
    assert json.loads(_command("--json"))["subscriptions_canceled"] == 1


# --- the billing step: billing_periods_close --------------------------------------------------

PERIODS_STEP = "public.billing_periods_close()"


def test_billing_periods_close_counts_each_outcome_and_a_second_run_closes_nothing(
    now, month_end_state
):
    downgrading = UserFactory()
    ended = now - timedelta(days=9)
    _subscription(
        downgrading,
        "team",
        "active",
        _months(ended, -1),
        ended,
        cancel_at_period_end=True,
        scheduled_tier=_tier("pro"),
    )

    assert run_as_owner(PERIODS_STEP) == {
        "quotas_rolled": 1,
        "alerts_resolved": 1,
        "subscriptions_canceled": 1,
        "subscriptions_downgraded": 1,
        "subscriptions_expired": 1,
        "subscriptions_renewed": 1,
    }
    assert _current(downgrading).tier.slug == "pro"
    # The report is the orchestrator's other step.
    assert _db("SELECT count(*) FROM usage_monthly_reports") == 0
    subscriptions = list(UserSubscription.objects.order_by("pk").values())
    quotas = list(UserQuota.objects.order_by("pk").values())

    assert run_as_owner(PERIODS_STEP) == {k: v for k, v in ZEROS.items() if k != "report_rows"}
    assert list(UserSubscription.objects.order_by("pk").values()) == subscriptions
    assert list(UserQuota.objects.order_by("pk").values()) == quotas


def test_billing_periods_close_is_the_service_contexts_only():
    """Not granted to the runtime role in any context; granted, its own check refuses."""
    assert runtime_role_outcomes(PERIODS_STEP) == dict.fromkeys(CONTEXTS, "not granted")
    assert runtime_role_outcomes(PERIODS_STEP, granted=True) == SERVICE_ONLY
