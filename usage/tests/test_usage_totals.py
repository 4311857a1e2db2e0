"""The all-users daily totals (``ai_usage_daily_totals``, usage/sql/0005): always equal to the
per-user roll-up of the days they cover, kept so by daily maintenance and by record_ai_usage for
a request placed in a covered day; what the staff dashboard reads for every user; staff-only."""

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from usage import services
from usage.dashboard_selectors import (
    UsageFilter,
    all_users_days,
    cost_by_month,
    daily_by_provider,
    model_popularity,
    overview_kpis,
    provider_comparison,
)
from usage.models import AIUsageDaily, AIUsageDailyTotal, AIUsageTotalsState
from usage.tasks import refresh_usage_today as refresh_usage_today_task
from witchcraft.platform import rls
from witchcraft.testing import factories


def refresh_usage_today() -> int:
    return refresh_usage_today_task(timestamp=0)  # as the job worker runs it


pytestmark = pytest.mark.django_db

TODAY = datetime.now(UTC).date()
COUNTERS = ("request_count", "error_count", "total_tokens", "cost", "latency_ms_sum")


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def record(user, model, day: date, *, tokens=1000, cost="0.50", status="success"):
    with transaction.atomic(), rls.service_context():
        return services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=tokens,
            output_tokens=tokens // 2,
            cost=Decimal(cost),
            latency_ms=250,
            status=status,
            created_at=_at(day),
        )


def service(sql: str, params=()):
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def by_key(rows) -> dict:
    return {
        (row["usage_date"], row["provider_id"], row["model_id"]): tuple(row[c] for c in COUNTERS)
        for row in rows
    }


def per_user_sums(before: date) -> dict:
    return by_key(
        AIUsageDaily.objects.filter(usage_date__lt=before)
        .values("usage_date", "provider_id", "model_id")
        .annotate(**{c: Sum(c) for c in COUNTERS})
    )


def totals() -> dict:
    return by_key(
        AIUsageDailyTotal.objects.values("usage_date", "provider_id", "model_id", *COUNTERS)
    )


def covered_before() -> date:
    return AIUsageTotalsState.objects.get().covered_before


@pytest.fixture
def models():
    return factories.catalog_model("gpt-5-mini"), factories.catalog_model("claude-haiku-4-5")


@pytest.fixture
def history(models):
    """Three users over the last ten days, today included, with a failure."""
    gpt, claude = models
    users = [factories.UserFactory() for _ in range(3)]
    for offset in range(10):
        day = TODAY - timedelta(days=offset)
        for n, user in enumerate(users):
            record(user, gpt if n % 2 else claude, day, tokens=100 * (n + 1) + offset)
    record(users[0], gpt, TODAY - timedelta(days=2), status="error")
    return users


def test_a_refresh_makes_the_totals_equal_to_the_per_user_rows_of_the_covered_days(history):
    rows = service("SELECT public.refresh_usage_daily_totals(NULL)")
    assert covered_before() == TODAY
    assert totals() == per_user_sums(TODAY) and len(totals()) == rows
    assert not AIUsageDailyTotal.objects.filter(usage_date=TODAY).exists()


def test_a_request_placed_in_a_covered_day_is_added_to_its_total_at_once(history, models):
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    gpt, claude = models
    user = factories.UserFactory()
    record(user, gpt, TODAY - timedelta(days=4), tokens=777, cost="1.25")
    record(user, claude, TODAY - timedelta(days=40), tokens=5)  # a day no one used yet
    record(user, gpt, TODAY, tokens=9)  # today: not covered, read live
    assert totals() == per_user_sums(TODAY)


def test_daily_maintenance_recomputes_the_last_days_and_every_day_it_missed(history, models):
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    day_before = TODAY - timedelta(days=1)
    # Rows the totals could not know of: one written behind record_ai_usage's back, as the
    # owner (yesterday), and days the job "missed" (covered_before set back by five days).
    AIUsageDaily.objects.filter(usage_date=day_before).update(request_count=99, success_count=99)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ai_usage_totals_state SET covered_before = %s", [TODAY - timedelta(days=5)]
        )
        cursor.execute(
            "DELETE FROM ai_usage_daily_totals WHERE usage_date >= %s", [TODAY - timedelta(days=5)]
        )
    summary = json.loads(service("SELECT public.daily_maintenance()"))
    assert summary["usage_totals_rows"] == len(
        {k for k in per_user_sums(TODAY) if k[0] >= TODAY - timedelta(days=5)}
    )
    assert totals() == per_user_sums(TODAY) and covered_before() == TODAY
    # A second run changes nothing.
    service("SELECT public.daily_maintenance()")
    assert totals() == per_user_sums(TODAY)


def test_the_dashboard_reads_the_same_numbers_from_the_totals(history):
    start = TODAY - timedelta(days=29)
    flt = UsageFilter(start=start, end=TODAY)
    with transaction.atomic(), rls.service_context():
        live = (
            provider_comparison(flt=flt),
            model_popularity(flt=flt),
            cost_by_month(flt=flt),
            daily_by_provider(start=start, end=TODAY),
        )
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    with transaction.atomic(), rls.service_context(), CaptureQueriesContext(connection) as q:
        from_totals = (
            provider_comparison(flt=flt),
            model_popularity(flt=flt),
            cost_by_month(flt=flt),
            daily_by_provider(start=start, end=TODAY),
        )
    assert from_totals == live
    daily_reads = [
        s["sql"] for s in q.captured_queries if re.search(r'FROM "?ai_usage_daily"? ', s["sql"])
    ]
    assert daily_reads and all(TODAY.isoformat() in sql for sql in daily_reads)
    assert sum('FROM "ai_usage_daily_totals"' in s["sql"] for s in q.captured_queries) >= 4


def test_only_staff_read_the_totals_and_nobody_writes_them(history):
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    user, staff = history[0], factories.UserFactory(is_staff=True)
    with transaction.atomic(), rls.user_context(user):
        assert not AIUsageDailyTotal.objects.exists()
        assert not AIUsageTotalsState.objects.exists()
    with transaction.atomic(), rls.user_context(staff):
        assert AIUsageDailyTotal.objects.exists() and AIUsageTotalsState.objects.exists()
    for sql in (
        "SELECT public.refresh_usage_daily_totals(3)",
        "UPDATE ai_usage_daily_totals SET request_count = 0",
        "DELETE FROM ai_usage_daily_totals",
        "UPDATE ai_usage_totals_state SET covered_before = now()",
    ):
        with (
            pytest.raises(DatabaseError) as caught,
            transaction.atomic(),
            rls.user_context(user),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
        assert caught.value.__cause__.sqlstate == "42501", sql
    with pytest.raises(DatabaseError) as caught:
        service("SELECT public.refresh_usage_daily_totals(-1)")
    assert caught.value.__cause__.sqlstate == "22023"


def test_todays_kpis_from_the_pages_single_read_match_their_own_query(history):
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    with transaction.atomic(), rls.service_context():
        days = all_users_days(TODAY - timedelta(days=29), TODAY, count_users=True)
        assert days.users_by_day == {TODAY: 3}
        assert overview_kpis(today=TODAY, days=days) == overview_kpis(today=TODAY)
        assert all_users_days(TODAY, TODAY).users_by_day == {}


def test_todays_totals_as_of_the_minute_are_read_while_fresh(history, models):
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    start = TODAY - timedelta(days=29)
    flt = UsageFilter(start=start, end=TODAY)
    with transaction.atomic(), rls.service_context():
        live = (provider_comparison(flt=flt), model_popularity(flt=flt), overview_kpis(today=TODAY))
    assert refresh_usage_today() == len(
        {k for k in per_user_sums(TODAY + timedelta(days=1)) if k[0] == TODAY}
    )
    state = AIUsageTotalsState.objects.get()
    assert (state.today_date, state.today_users, state.covered_before) == (TODAY, 3, TODAY)
    assert totals() == per_user_sums(TODAY + timedelta(days=1))  # today's rows as of now
    with transaction.atomic(), rls.service_context(), CaptureQueriesContext(connection) as q:
        days = all_users_days(start, TODAY, count_users=True)
        from_totals = (
            provider_comparison(flt=flt, days=days),
            model_popularity(flt=flt, days=days),
            overview_kpis(today=TODAY, days=days),
        )
    assert days.today_as_of == state.today_as_of
    assert from_totals == live
    assert not [s for s in q.captured_queries if re.search(r"FROM ai_usage_daily d", s["sql"])]

    # A request after the refresh shows at the next one; a refresh two minutes old is not read.
    record(history[0], models[0], TODAY, tokens=5_000)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ai_usage_totals_state SET today_as_of = now() - interval '121 seconds'"
        )
    with transaction.atomic(), rls.service_context():
        days = all_users_days(start, TODAY, count_users=True)
        assert days.today_as_of is None
        assert overview_kpis(today=TODAY, days=days) == overview_kpis(today=TODAY)
    # The daily refresh leaves today's rows to the minute's refresh.
    service("SELECT public.refresh_usage_daily_totals(3)")
    assert AIUsageDailyTotal.objects.filter(usage_date=TODAY).exists()
    assert {k: v for k, v in totals().items() if k[0] < TODAY} == per_user_sums(TODAY)


def test_the_overview_says_as_of_when(history, client):
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff)
    service("SELECT public.refresh_usage_daily_totals(NULL)")
    refresh_usage_today()
    page = client.get("/dashboard/", secure=True)
    as_of = AIUsageTotalsState.objects.get().today_as_of
    assert f"as of {as_of.astimezone(UTC):%H:%M}" in page.content.decode()


def test_only_staff_or_the_service_refresh_today(history):
    user = history[0]
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(user),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT public.refresh_usage_today_totals()")
    assert caught.value.__cause__.sqlstate == "42501"
