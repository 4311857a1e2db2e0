"""The user's overview (``/me/``) and usage pages (``/me/usage/``, ``/me/usage.csv``): each for
its owner only, numbers from the roll-ups, range validation, CSV, row-level security on
purpose, bounded query counts."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from agents.models import AgentSession
from billing.models import SubscriptionTier, UserSubscription
from usage import me_selectors, selectors, services
from usage.forms import RANGE_REVERSED, RANGE_TOO_LONG
from usage.models import AIModel, AIUsageDaily, AIUsageMonthly
from usage.views import CSV_HEADER
from witchcraft.platform import rls
from witchcraft.selfservice import overview
from witchcraft.selfservice.views import NO_QUOTA, PLAN_PATH
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

OVERVIEW = "/me/"
USAGE = "/me/usage/"
USAGE_CSV = "/me/usage.csv"
NOW = datetime.now(UTC)
TODAY = NOW.date()
# Noon of the first day of the month before last (outside any default 30-day range, in another
# month's roll-up) and of three days ago: never today, whatever the hour.
EARLIER_MONTH = (
    NOW.replace(day=1, hour=12, minute=0, second=0, microsecond=0) - timedelta(days=32)
).replace(day=1)
THREE_DAYS_AGO = (NOW - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)


def record(user, model, *, when=None, cost="0.10", tokens=(1000, 500), status="success"):
    """One AI request through record_ai_usage, which fills the daily and monthly roll-ups."""
    with transaction.atomic(), rls.service_context():
        return services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost=Decimal(cost),
            latency_ms=100,
            status=status,
            created_at=when or datetime.now(UTC),
        )


@pytest.fixture
def usage():
    """Alice (free quota) uses GPT-5 mini and Claude Haiku today, GPT-5 mini three days ago and
    last month; Bob uses only Codestral, today and in the month before last."""
    gpt = factories.catalog_model("gpt-5-mini")
    haiku = factories.catalog_model("claude-haiku-4-5")
    codestral = factories.catalog_model("codestral-latest")
    alice = factories.UserFactory(email="alice@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    factories.quota_for(alice, "free")
    factories.quota_for(bob, "free")
    record(alice, gpt, cost="0.30", tokens=(1000, 500))
    record(alice, haiku, cost="0.55", tokens=(2000, 1000), status="error")
    record(alice, gpt, when=THREE_DAYS_AGO, cost="0.01", tokens=(100, 0))
    record(alice, gpt, when=EARLIER_MONTH, cost="2.00", tokens=(7000, 0))
    record(bob, codestral, cost="0.77", tokens=(30000, 3000))
    record(bob, codestral, when=EARLIER_MONTH, cost="9.99", tokens=(90000, 0))
    return {"gpt": gpt, "haiku": haiku, "codestral": codestral, "alice": alice, "bob": bob}


def page(client, user, url, **params):
    client.force_login(user)
    return client.get(url, params)


def html(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [OVERVIEW, USAGE, USAGE_CSV])
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login/")
    assert "next=" in response["Location"]


def test_navigation_lists_both_pages_in_order(client, user):
    body = html(page(client, user, USAGE))
    assert body.index('href="/me/"') < body.index('href="/me/usage/" aria-current="page"')
    assert ">Overview</a>" in body
    assert ">Usage</a>" in body


# --- /me/ -------------------------------------------------------------------------------------


def test_overview_shows_the_owners_month(client, usage):
    alice = usage["alice"]
    response = page(client, alice, OVERVIEW)
    body = html(response)
    overview = response.context["overview"]
    # Today: both of today's requests, from ai_usage_daily.
    assert overview.today == me_selectors.UsageSum(
        requests=2, tokens=1500 + 3000, cost=Decimal("0.85")
    )
    # This month: today's and (when it is this month) three days ago's; never the earlier month's.
    in_month = THREE_DAYS_AGO.month == NOW.month
    assert overview.this_month == me_selectors.UsageSum(
        requests=3 if in_month else 2,
        tokens=4500 + (100 if in_month else 0),
        cost=Decimal("0.86") if in_month else Decimal("0.85"),
    )
    assert overview.plan_name == "Free"
    assert f'href="{PLAN_PATH}"' in body
    assert '<div class="value">$0.85' in body
    # The quota: 0.85 (or 0.86) of $1.00, with its progress bars and reset date.
    meter = overview.cost_meter
    assert meter.limit == Decimal("1.00")
    assert meter.used == overview.this_month.cost
    assert meter.bar == meter.percent
    assert f'id="quota-cost-bar" max="100" value="{meter.bar}"' in body
    assert f'id="quota-tokens-bar" max="100" value="{overview.tokens_meter.bar}"' in body
    assert overview.tokens_meter.limit == 100_000
    period_end = overview.quota.period_end.astimezone(UTC)
    assert f"resets {period_end:%Y-%m-%d %H:%M} UTC" in body
    # Over 80 % of the cost limit: an open warning alert.
    assert [(a.alert_type, a.metric, a.threshold_percent) for a in overview.alerts] == [
        ("warning", "cost", 80)
    ]
    assert 'id="open-alerts"' in body
    assert "Warning (80 %)" in body


def test_overview_never_shows_another_users_numbers(client, usage):
    body = html(page(client, usage["bob"], OVERVIEW))
    assert "$0.77" in body
    assert "$0.85" not in body  # Alice's day
    assert "33,000" in body  # Bob's tokens today
    assert "4,500" not in body
    assert 'id="no-alerts"' in body  # Alice's alert is hers alone


def test_overview_for_a_staff_member_shows_their_own_rows_only(client, usage):
    """Staff are admins to the policies (they may read every row): only the explicit user
    filter keeps other users' usage off their own overview."""
    staff = factories.UserFactory(is_staff=True)
    response = page(client, staff, OVERVIEW)
    body = html(response)
    assert response.context["overview"].today == me_selectors.UsageSum()
    assert response.context["overview"].alerts == []
    assert 'id="no-quota"' in body
    assert NO_QUOTA in body
    assert "$0.77" not in body
    assert "$0.85" not in body


def test_overview_names_the_current_plan_and_handles_no_quota(client, user):
    UserSubscription.objects.create(
        user=user,
        tier=SubscriptionTier.objects.get(slug="pro"),
        status="active",
        current_period_start=NOW - timedelta(days=3),
        current_period_end=NOW + timedelta(days=27),
    )
    response = page(client, user, OVERVIEW)
    body = html(response)
    assert response.context["overview"].plan_name == "Pro"
    assert '<span id="plan-name">Pro</span>' in body
    assert response.context["overview"].quota is None
    assert NO_QUOTA in body
    assert "<progress" not in body


def test_overview_ignores_a_subscription_that_is_no_longer_current(client, user):
    UserSubscription.objects.create(
        user=user,
        tier=SubscriptionTier.objects.get(slug="team"),
        status="canceled",
        current_period_start=NOW - timedelta(days=40),
        current_period_end=NOW - timedelta(days=10),
    )
    response = page(client, user, OVERVIEW)
    assert response.context["overview"].plan_name == "Free"
    assert "Team" not in html(response)


def test_quota_meter_caps_the_bar_but_not_the_percent():
    over = overview.QuotaMeter.of(used=150, limit=100, remaining=0, percent=Decimal("150.00"))
    assert (over.bar, over.percent) == (Decimal(100), Decimal("150.00"))
    no_allowance = overview.QuotaMeter.of(used=0, limit=0, remaining=0, percent=None)
    assert no_allowance.bar == Decimal(100)
    half = overview.QuotaMeter.of(used=50, limit=100, remaining=50, percent=Decimal("50.00"))
    assert half.bar == Decimal("50.00")


def test_overview_lists_the_five_latest_sessions_of_the_owner(client, user):
    other = factories.UserFactory()
    theirs = factories.AgentSessionFactory(user=other, title="Not yours")
    base = NOW - timedelta(hours=10)
    mine = []
    for n in range(7):
        session = factories.AgentSessionFactory(user=user, title=f"Mine {n}")
        AgentSession.objects.filter(pk=session.pk).update(
            started_at=base, last_activity_at=base + timedelta(minutes=n)
        )
        mine.append(session)
    AgentSession.objects.filter(pk=mine[6].pk).update(is_active=False, ended_at=NOW)
    # A message moves its session to the front (its last activity is now) and is counted.
    factories.AgentMessageFactory(session=mine[2], position=1)
    response = page(client, user, OVERVIEW)
    body = html(response)
    shown = response.context["overview"].sessions
    assert [s.title for s in shown] == ["Mine 2", "Mine 6", "Mine 5", "Mine 4", "Mine 3"]
    assert shown[0].message_count == 1
    assert f'href="/me/sessions/{mine[6].pk}/"' in body
    assert f"/me/sessions/{theirs.pk}/" not in body
    assert "Not yours" not in body
    assert "Mine 1<" not in body
    assert "Ended" in body
    assert "Active" in body


def test_overview_query_count_does_not_grow_with_the_users_data(
    client, usage, django_assert_max_num_queries
):
    alice = usage["alice"]
    client.force_login(alice)
    # Sign-in, the row-level-security context and savepoints included.
    with django_assert_max_num_queries(26) as first:
        html(client.get(OVERVIEW))
    for n in range(12):
        factories.AgentSessionFactory(user=alice, title=f"Extra {n}")
        record(alice, usage["codestral"], cost="0.00", tokens=(10, 10))
    with django_assert_max_num_queries(len(first)):
        html(client.get(OVERVIEW))


# --- /me/usage/ -------------------------------------------------------------------------------


def test_usage_page_defaults_to_the_last_30_utc_days(client, usage):
    response = page(client, usage["alice"], USAGE)
    body = html(response)
    report = response.context["report"]
    assert report.date_to == TODAY
    assert report.date_from == TODAY - timedelta(days=29)
    assert len(report.days) == 30
    assert "UTC days" in body
    assert f'value="{TODAY.isoformat()}"' in body  # the range in effect fills the inputs
    expected_csv = f"{USAGE_CSV}?from={report.date_from.isoformat()}&amp;to={TODAY.isoformat()}"
    assert f'href="{expected_csv}"' in body


def test_usage_page_charts_every_day_of_the_range(client, usage):
    start = TODAY - timedelta(days=6)
    response = page(client, usage["alice"], USAGE, **{"from": start.isoformat()})
    report = response.context["report"]
    assert [entry.day for entry in report.days] == [start + timedelta(days=n) for n in range(7)]
    tokens = response.context["tokens_chart"]
    cost = response.context["cost_chart"]
    assert tokens["labels"] == [(start + timedelta(days=n)).isoformat() for n in range(7)]
    assert tokens["datasets"][0]["data"] == [0, 0, 0, 100, 0, 0, 4500]
    assert cost["datasets"][0]["data"] == [0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.85]
    assert cost["money"] is True
    body = html(response)
    assert 'data-chart="chart-tokens"' in body
    assert '<script id="chart-tokens" type="application/json">' in body
    assert "vendor/chartjs/chart.umd.min.js" in body
    assert "<script>" not in body  # no inline code under the Content-Security-Policy


def test_usage_page_breaks_the_range_down_by_model_and_provider(client, usage):
    start = TODAY - timedelta(days=6)
    response = page(client, usage["alice"], USAGE, **{"from": start.isoformat()})
    report = response.context["report"]
    assert report.total == me_selectors.UsageSum(requests=3, tokens=4600, cost=Decimal("0.86"))
    assert [(m.name, m.provider, m.usage, m.cost_share) for m in report.models] == [
        (
            "Claude Haiku 4.5",
            "Anthropic",
            me_selectors.UsageSum(1, 3000, Decimal("0.55")),
            Decimal("64.0"),
        ),
        ("GPT-5 mini", "OpenAI", me_selectors.UsageSum(2, 1600, Decimal("0.31")), Decimal("36.0")),
    ]
    assert [(p.name, p.usage.requests, p.cost_share) for p in report.providers] == [
        ("Anthropic", 1, Decimal("64.0")),
        ("OpenAI", 2, Decimal("36.0")),
    ]
    body = html(response)
    assert "<td>Claude Haiku 4.5</td><td>Anthropic</td><td>1</td><td>3,000</td>" in body
    assert "64.0 %" in body


def test_usage_page_shows_the_monthly_history(client, usage):
    response = page(client, usage["alice"], USAGE)
    months = response.context["report"].months
    earlier = EARLIER_MONTH.date()
    assert (months[0].year, months[0].month) == (TODAY.year, TODAY.month)
    assert (months[-1].year, months[-1].month) == (earlier.year, earlier.month)
    assert months[-1].totals.total_tokens == 7000
    assert months[-1].totals.cost == Decimal("2.00")
    body = html(response)
    assert f"<td>{earlier:%Y-%m}</td>" in body
    assert response.context["months_chart"]["labels"][-1] == f"{TODAY:%Y-%m}"


def test_usage_page_never_shows_another_users_rows(client, usage):
    body = html(page(client, usage["alice"], USAGE))
    assert "Codestral" not in body
    assert "Mistral" not in body
    assert "9.99" not in body
    body = html(page(client, usage["bob"], USAGE))
    assert "Codestral" in body
    assert "GPT-5 mini" not in body
    assert "Claude Haiku" not in body


def test_usage_page_for_a_staff_member_shows_their_own_rows_only(client, usage):
    """Staff may read every row under the policies: the explicit filter is what holds here."""
    staff = factories.UserFactory(is_staff=True)
    response = page(client, staff, USAGE)
    body = html(response)
    assert response.context["report"].total == me_selectors.UsageSum()
    assert response.context["report"].months == []
    assert "Codestral" not in body
    assert "GPT-5 mini" not in body
    assert 'id="no-models"' in body
    assert 'id="no-months"' in body


def test_a_model_that_left_the_catalog_keeps_its_rows(client, usage):
    AIModel.objects.filter(pk=usage["haiku"].pk).update(is_active=False)
    response = page(client, usage["alice"], USAGE)
    names = [m.name for m in response.context["report"].models]
    assert me_selectors.RETIRED_MODEL.format(id=usage["haiku"].pk) in names
    assert response.context["report"].total.requests == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, RANGE_REVERSED),
        ({"from": "2025-01-01", "to": "2026-01-02"}, RANGE_TOO_LONG),
        ({"from": (TODAY + timedelta(days=1)).isoformat()}, RANGE_REVERSED),
        ({"from": (TODAY - timedelta(days=366)).isoformat()}, RANGE_TOO_LONG),
        ({"from": "2026-02-30"}, "Enter a valid date."),
        ({"to": "yesterday"}, "Enter a valid date."),
        ({"from": "99999-01-01"}, "Enter a valid date."),
    ],
)
def test_usage_page_refuses_a_bad_range(client, usage, params, message):
    response = page(client, usage["alice"], USAGE, **params)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert 'id="range-errors"' in body
    # The page still shows the default range (the last 30 days), never the refused one.
    report = response.context["report"]
    assert (report.date_from, report.date_to) == (TODAY - timedelta(days=29), TODAY)
    assert f'value="{TODAY.isoformat()}"' in body
    assert "chart-tokens" in body


def test_usage_page_accepts_366_days_and_dates_at_the_edges(client, usage):
    response = page(
        client,
        usage["alice"],
        USAGE,
        **{"from": (TODAY - timedelta(days=365)).isoformat(), "to": TODAY.isoformat()},
    )
    assert len(response.context["report"].days) == 366
    assert html(response)
    # The first and last days a page may name (form_fields.FIRST_DAY / LAST_DAY): a default
    # start and the comparison before it stay inside Python's and PostgreSQL's dates.
    response = page(client, usage["alice"], USAGE, to="1970-01-05")
    assert response.context["report"].date_from == date(1969, 12, 7)
    assert html(response)
    response = page(client, usage["alice"], USAGE, **{"from": "2999-12-01", "to": "2999-12-31"})
    assert len(response.context["report"].days) == 31
    assert response.context["comparison"].previous.start == date(2999, 11, 1)
    assert html(response)


def test_usage_page_query_count_is_bounded(client, usage, django_assert_max_num_queries):
    alice = usage["alice"]
    client.force_login(alice)
    params = {"from": (TODAY - timedelta(days=365)).isoformat()}
    with django_assert_max_num_queries(24) as first:
        html(client.get(USAGE, params))
    for name in ("gpt-5", "gpt-4.1", "gemini-2.5-pro", "mistral-small-latest"):
        record(alice, factories.catalog_model(name), when=THREE_DAYS_AGO, cost="0.00")
        record(alice, factories.catalog_model(name), when=EARLIER_MONTH, cost="0.00")
    with django_assert_max_num_queries(len(first)):
        html(client.get(USAGE, params))


def test_csv_query_count_is_bounded(client, usage, django_assert_max_num_queries):
    alice = usage["alice"]
    client.force_login(alice)
    params = {"from": (TODAY - timedelta(days=365)).isoformat()}
    with django_assert_max_num_queries(20) as first:
        assert client.get(USAGE_CSV, params).status_code == 200
    for name in ("gpt-5", "gpt-4.1", "gemini-2.5-pro", "mistral-small-latest"):
        record(alice, factories.catalog_model(name), when=THREE_DAYS_AGO, cost="0.00")
    with django_assert_max_num_queries(len(first)):
        assert client.get(USAGE_CSV, params).status_code == 200


# --- /me/usage.csv ----------------------------------------------------------------------------


def csv_table(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_has_a_row_per_day_provider_and_model(client, usage):
    start = TODAY - timedelta(days=6)
    response = page(
        client, usage["alice"], USAGE_CSV, **{"from": start.isoformat(), "to": TODAY.isoformat()}
    )
    rows = csv_table(response)
    assert response["Content-Disposition"] == (
        f'attachment; filename="usage-{start.isoformat()}-{TODAY.isoformat()}.csv"'
    )
    assert rows[0] == CSV_HEADER
    three_days_ago = THREE_DAYS_AGO.date().isoformat()
    assert rows[1] == [
        three_days_ago, "openai", "gpt-5-mini", "1", "1", "0", "100", "0", "0", "0", "100",
        "0.010000",
    ]  # fmt: skip
    today = TODAY.isoformat()
    assert sorted(rows[2:]) == [
        [today, "anthropic", "claude-haiku-4-5", "1", "0", "1", "2000", "1000", "0", "0", "3000",
         "0.550000"],
        [today, "openai", "gpt-5-mini", "1", "1", "0", "1000", "500", "0", "0", "1500",
         "0.300000"],
    ]  # fmt: skip
    assert "codestral" not in response.content.decode()


def test_csv_defaults_to_the_last_30_days(client, usage):
    rows = csv_table(page(client, usage["bob"], USAGE_CSV))
    assert [row[:3] for row in rows[1:]] == [[TODAY.isoformat(), "mistral", "codestral-latest"]]


def test_csv_cells_are_escaped_against_formulas():
    from usage.views import csv_rows

    rows = csv_rows(
        [
            selectors.DailyUsage(
                day=TODAY,
                provider="=cmd|' /C calc'!A0",
                model=None,
                totals=selectors.UsageTotals(1, 1, 0, 10, 5, 0, 0, 15, Decimal("-0.5"), None),
            )
        ]
    )
    assert rows[0][1] == "'=cmd|' /C calc'!A0"
    assert rows[0][2] == ""
    assert rows[0][-1] == "'-0.500000"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, RANGE_REVERSED),
        ({"from": "2024-01-01", "to": "2026-01-01"}, RANGE_TOO_LONG),
        ({"from": "not-a-date"}, "From: Enter a valid date."),
    ],
)
def test_csv_refuses_a_bad_range_with_a_clear_message(client, usage, params, message):
    response = page(client, usage["alice"], USAGE_CSV, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert message in response.content.decode()
    assert "gpt-5-mini" not in response.content.decode()


# --- Row-level security, on purpose ----------------------------------------------------------


def test_rls_returns_only_the_viewers_roll_ups_without_any_filter(usage):
    """A read that forgot its user filter still sees only the viewer's rows."""
    alice, bob = usage["alice"], usage["bob"]
    # As the migration role (which bypasses the policies) both users' rows are there.
    assert set(AIUsageDaily.objects.values_list("user_id", flat=True)) == {alice.pk, bob.pk}
    with transaction.atomic(), rls.user_context(alice):
        assert set(AIUsageDaily.objects.values_list("user_id", flat=True)) == {alice.pk}
        assert set(AIUsageMonthly.objects.values_list("user_id", flat=True)) == {alice.pk}
        assert not AIUsageDaily.objects.filter(model_id=usage["codestral"].pk).exists()


def test_rls_a_wrong_user_id_reads_nothing(usage):
    """Selectors asked for another user's id, in the viewer's context, find nothing: the
    policies, not the filter, are what answer here."""
    alice, bob = usage["alice"], usage["bob"]
    start = TODAY - timedelta(days=29)
    with transaction.atomic(), rls.user_context(alice):
        days = me_selectors.usage_by_day_for_user(user_id=bob.pk, date_from=start, date_to=TODAY)
        assert all(entry.usage == me_selectors.UsageSum() for entry in days)
        total, models, providers = me_selectors.usage_breakdown_for_user(
            user_id=bob.pk, date_from=start, date_to=TODAY
        )
        assert (total, models, providers) == (me_selectors.UsageSum(), [], [])
        assert me_selectors.usage_today_and_month(user_id=bob.pk, today=TODAY) == (
            me_selectors.UsageSum(),
            me_selectors.UsageSum(),
        )
        assert selectors.usage_monthly_for_user(user_id=bob.pk) == []
    # The same reads in Bob's own context do find his rows: the data is there.
    with transaction.atomic(), rls.user_context(bob):
        total, models, _ = me_selectors.usage_breakdown_for_user(
            user_id=bob.pk, date_from=start, date_to=TODAY
        )
        assert total.cost == Decimal("0.77")
        assert [m.name for m in models] == ["Codestral"]


def test_rls_a_page_that_reads_the_wrong_users_rows_still_shows_only_the_viewers(
    client, usage, monkeypatch
):
    """Simulate the bug the policies are there for: the page asks for Bob's rows while Alice
    views it. The request runs as the runtime role in Alice's context, so nothing of Bob's
    comes back, on the page or in the CSV."""
    bob = usage["bob"]
    report_for, daily_for = me_selectors.usage_report_for_user, selectors.usage_daily_for_user
    monkeypatch.setattr(
        me_selectors,
        "usage_report_for_user",
        lambda *, user_id, **range_: report_for(user_id=bob.pk, **range_),
    )
    monkeypatch.setattr(
        selectors,
        "usage_daily_for_user",
        lambda *, user_id, **range_: daily_for(user_id=bob.pk, **range_),
    )
    response = page(client, usage["alice"], USAGE)
    body = html(response)
    assert response.context["report"].total == me_selectors.UsageSum()
    assert response.context["report"].months == []
    assert "Codestral" not in body
    assert "9.99" not in body
    rows = csv_table(client.get(USAGE_CSV))
    assert rows == [CSV_HEADER]
