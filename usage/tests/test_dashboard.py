"""The staff dashboard's overview (``/dashboard/``) and usage pages (``/dashboard/usage/``,
``/dashboard/usage.csv``): access, numbers, filters, CSV, empty states, query counts, escaping."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from billing.models import SubscriptionTier, UsageAlert, UserSubscription
from usage import services
from usage.dashboard import csv_rows
from usage.dashboard_selectors import UsageFilter, cost_by_month, model_popularity
from usage.dashboard_selectors import provider_comparison as providers_of
from usage.models import AIUsageDaily, AIUsageMonthly
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

OVERVIEW = "/dashboard/"
USAGE = "/dashboard/usage/"
USAGE_CSV = "/dashboard/usage.csv"
NOW = datetime.now(UTC)
LAST_MONTH = NOW.replace(day=1, hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture
def staff_client(client):
    # A bare staff row (no registration rows, no staff_flag_changed event): the pages' data is
    # the test's own.
    staff = factories.UserFactory(email="staff@example.com", is_staff=True)
    client.force_login(staff)
    return client


def record(user, model, *, when=None, cost="1.00", tokens=(1000, 500), latency=100, **fields):
    with transaction.atomic(), rls.service_context():
        return services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost=Decimal(cost),
            latency_ms=latency,
            created_at=when or NOW,
            **fields,
        )


@pytest.fixture
def usage():
    """Alice (OpenAI) and Bob (Anthropic, on the pro tier) today; Carol last month."""
    gpt = factories.catalog_model("gpt-5-mini")
    claude = factories.catalog_model("claude-haiku-4-5")
    alice = factories.UserFactory(email="alice@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    carol = factories.UserFactory(email="carol@example.com")
    record(alice, gpt, cost="1.25", latency=100)
    record(alice, gpt, cost="1.25", latency=300, status="error", error_code="boom")
    record(bob, claude, cost="3.00", tokens=(2000, 1000), latency=200)
    record(carol, gpt, when=LAST_MONTH, cost="5.00", tokens=(4000, 0), latency=None)
    UserSubscription.objects.create(
        user=bob,
        tier=SubscriptionTier.objects.get(slug="pro"),
        status="active",
        current_period_start=NOW - timedelta(days=3),
        current_period_end=NOW + timedelta(days=27),
    )
    return {"gpt": gpt, "claude": claude, "alice": alice, "bob": bob, "carol": carol}


def text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [OVERVIEW, USAGE, USAGE_CSV])
def test_staff_see_the_pages(staff_client, path):
    assert staff_client.get(path).status_code == 200


@pytest.mark.parametrize("path", [OVERVIEW, USAGE, USAGE_CSV])
def test_a_signed_in_member_gets_a_404(client, user, path):
    client.force_login(user)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [OVERVIEW, USAGE, USAGE_CSV])
def test_an_anonymous_visitor_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_navigation_lists_both_pages(staff_client):
    page = text(staff_client.get(USAGE))
    assert f'href="{OVERVIEW}"' in page
    assert f'href="{USAGE}" aria-current="page"' in page


# --- Overview --------------------------------------------------------------------------------


def test_the_overview_kpis_match_the_data(staff_client, usage):
    page = text(staff_client.get(OVERVIEW))
    kpis = staff_client.get(OVERVIEW).context["kpis"]
    today = kpis.today.now
    assert (today.users, today.requests, today.tokens) == (2, 3, 6000)
    assert today.cost == Decimal("5.50")
    assert today.average_latency_ms == 200
    assert round(today.error_rate, 1) == 33.3
    assert (kpis.month.now.users, kpis.month.now.requests) == (2, 3)
    # This month to date against the same days of last month: Carol's last day of last month
    # counts only when this month has as many days behind it (the 31st against the 30th...).
    month_before = kpis.month.previous
    assert month_before.start == (NOW.date().replace(day=1) - timedelta(days=1)).replace(day=1)
    carol_counted = month_before.start <= LAST_MONTH.date() <= month_before.end
    assert kpis.month.before.requests == (1 if carol_counted else 0)
    for snippet in ("$5.50", "6,000", "33.3 %", "200 ms", kpis.month.label):
        assert snippet in page, snippet
    assert "No usage yet today" not in page


def test_the_overview_charts_and_top_users(staff_client, usage):
    response = staff_client.get(OVERVIEW)
    page = text(response)
    tokens = response.context["tokens_chart"]
    assert {d["label"] for d in tokens["datasets"]} == {"OpenAI", "Anthropic"}
    assert len(tokens["labels"]) == 30 and tokens["labels"][-1] == NOW.date().isoformat()
    by_provider = {d["label"]: d["data"][-1] for d in tokens["datasets"]}
    assert by_provider == {"OpenAI": 3000, "Anthropic": 3000}
    costs = {d["label"]: d["data"][-1] for d in response.context["cost_chart"]["datasets"]}
    assert costs == {"OpenAI": 2.5, "Anthropic": 3.0}
    popularity = response.context["popularity_chart"]
    carol_in_window = (NOW.date() - LAST_MONTH.date()).days < 30
    assert popularity["labels"][0] == "GPT-5 mini (OpenAI)"
    assert popularity["datasets"][0]["data"][0] == (3 if carol_in_window else 2)
    assert 'data-chart="chart-tokens"' in page and 'id="chart-tokens"' in page
    top = [row.email for row in response.context["top_users"]]
    assert top == ["bob@example.com", "alice@example.com"]
    bob_link = reverse("dashboard:user", args=[usage["bob"].pk])
    assert f'href="{bob_link}"' in page


def test_the_overview_lists_open_alerts_and_recent_security_events(staff_client, usage):
    alice = usage["alice"]
    UsageAlert.objects.create(
        user=alice,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=NOW.replace(day=1),
        value_at_trigger=80,
        limit_at_trigger=100,
    )
    UsageAlert.objects.create(
        user=usage["bob"],
        alert_type="exceeded",
        metric="cost",
        threshold_percent=100,
        period_start=NOW.replace(day=1),
        value_at_trigger=10,
        limit_at_trigger=10,
        resolved_at=NOW,
    )
    factories.AuditLogFactory(user=alice, event_type="login_failed", severity="warning")
    factories.AuditLogFactory(user=alice, event_type="quietly_logged", severity="info")
    old = factories.AuditLogFactory(user=alice, event_type="old_alarm", severity="critical")
    type(old).objects.filter(pk=old.pk).update(created_at=NOW - timedelta(days=2))
    response = staff_client.get(OVERVIEW)
    page = text(response)
    assert [a.user_id for a in response.context["alerts"]] == [alice.pk]
    assert [e.event_type for e in response.context["security_events"]] == ["login_failed"]
    assert "No open quota alerts" not in page and "No security events" not in page
    assert 'href="/dashboard/quotas/"' in page


def test_an_empty_database_shows_the_empty_states(staff_client):
    page = text(staff_client.get(OVERVIEW))
    for empty in (
        "No usage yet today or yesterday.",
        "No usage this month to date or in the same days of last month.",
        "No usage in the last 30 days.",
        "No models used in the last 30 days.",
        "No spending this month yet.",
        "No open quota alerts.",
        "No security events in the last 24 hours.",
    ):
        assert empty in page, empty
    assert "<canvas" not in page
    page = text(staff_client.get(USAGE))
    assert "No usage matches these filters." in page
    assert "No models used with these filters." in page
    assert "No spending with these filters." in page
    response = staff_client.get(USAGE_CSV)
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["table", "name", "requests", "tokens", "cost", "avg_latency_ms", "error_rate"]
    ]


def test_user_text_is_escaped(staff_client):
    gpt = factories.catalog_model("gpt-5-mini")
    evil = factories.UserFactory(
        email="<script>x</script>@example.com", full_name="<script>alert(1)</script>"
    )
    record(evil, gpt, cost="9.00")
    factories.AuditLogFactory(user=evil, event_type="login_failed", severity="critical")
    page = text(staff_client.get(OVERVIEW))
    assert "<script>alert(1)" not in page and "<script>x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- Usage -----------------------------------------------------------------------------------


def period(**filters) -> dict:
    return {"start": LAST_MONTH.date().isoformat(), "end": NOW.date().isoformat(), **filters}


def test_the_usage_tables_match_the_data(staff_client, usage):
    response = staff_client.get(USAGE, period())
    page = text(response)
    providers = {row.key: row.totals for row in response.context["tables"]["providers"]}
    assert set(providers) == {"OpenAI", "Anthropic"}
    openai = providers["OpenAI"]
    assert (openai.requests, openai.tokens, openai.cost) == (3, 7000, Decimal("7.50"))
    assert openai.average_latency_ms == 200 and round(openai.error_rate, 1) == 33.3
    assert providers["Anthropic"].requests == 1
    months = [(row.key, row.totals.requests) for row in response.context["tables"]["months"]]
    expected = {LAST_MONTH.strftime("%Y-%m"): 1, NOW.strftime("%Y-%m"): 3}
    assert dict(months) == expected
    assert "$7.50" in page and "7,000" in page
    assert 'data-chart="chart-providers"' in page and 'id="chart-months"' in page


def test_whole_months_read_the_monthly_rollup_with_the_same_totals(staff_client, usage):
    first = LAST_MONTH.date().replace(day=1)
    next_month = (NOW.date().replace(day=1) + timedelta(days=32)).replace(day=1)
    whole = UsageFilter(start=first, end=next_month - timedelta(days=1))
    partial = UsageFilter(start=first, end=next_month - timedelta(days=2))
    assert [(r.key, r.totals) for r in cost_by_month(flt=whole)] == [
        (r.key, r.totals) for r in cost_by_month(flt=partial)
    ]
    response = staff_client.get(USAGE, {"start": whole.start, "end": whole.end})
    assert [r.totals.requests for r in response.context["tables"]["months"]] == [1, 3]


@pytest.mark.parametrize(
    ("filters", "providers", "requests"),
    [
        ({}, {"OpenAI", "Anthropic"}, 4),
        ({"user": "alice@example.com"}, {"OpenAI"}, 2),
        ({"user": "ALICE@example.com"}, {"OpenAI"}, 2),
        ({"tier": "pro"}, {"Anthropic"}, 1),
        ({"provider": "anthropic"}, {"Anthropic"}, 1),
        ({"model": "gpt-5-mini"}, {"OpenAI"}, 3),
        ({"user": "nobody@example.com"}, set(), 0),
    ],
)
def test_filters_change_the_results(staff_client, usage, filters, providers, requests):
    query = dict(filters)
    if "tier" in query:
        query["tier"] = SubscriptionTier.objects.get(slug=query["tier"]).pk
    if "provider" in query:
        query["provider"] = usage["claude"].provider_id
    if "model" in query:
        query["model"] = usage["gpt"].pk
    tables = staff_client.get(USAGE, period(**query)).context["tables"]
    assert {row.key for row in tables["providers"]} == providers
    assert sum(row.totals.requests for row in tables["providers"]) == requests
    assert sum(row.totals.requests for row in tables["models"]) == requests
    assert sum(row.totals.requests for row in tables["months"]) == requests


def test_the_period_defaults_to_30_days_and_is_at_most_366(staff_client, usage):
    tables = staff_client.get(USAGE).context["tables"]
    assert tables["filter"].end == NOW.date()
    assert (tables["filter"].end - tables["filter"].start).days == 29
    too_long = {"start": "2020-01-01", "end": "2021-06-01"}
    page = text(staff_client.get(USAGE, too_long))
    assert "at most 366 days" in page
    assert staff_client.get(USAGE_CSV, too_long).status_code == 400
    assert "must not be after" in text(
        staff_client.get(USAGE, {"start": "2024-02-01", "end": "2024-01-01"})
    )


def test_the_csv_equals_the_filtered_tables(staff_client, usage):
    query = period(provider=usage["gpt"].provider_id)
    response = staff_client.get(USAGE_CSV, query)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    tables = staff_client.get(USAGE, query).context["tables"]
    assert rows[1:] == csv_rows(tables)
    assert rows[1] == ["providers", "OpenAI", "3", "7000", "7.50", "200", "33.3"]
    assert {row[0] for row in rows[1:]} == {"providers", "models", "months"}
    assert "Anthropic" not in response.content.decode()
    flt = tables["filter"]
    assert len(rows) - 1 == sum(
        len(part)
        for part in (providers_of(flt=flt), model_popularity(flt=flt), cost_by_month(flt=flt))
    )


def test_the_csv_defuses_formulas():
    tables = {
        "providers": [],
        "models": [],
        "months": [],
    }
    assert csv_rows(tables) == []
    from witchcraft.platform.csv_export import csv_cell as _cell

    assert [_cell(v) for v in ("=1+1", "+1", "-1", "@SUM", "plain", 5)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM",
        "plain",
        "5",
    ]


# --- Query counts ----------------------------------------------------------------------------


def many_rows(count: int) -> None:
    """``count`` users with roll-up rows on each provider for each of the last 30 days, an open
    alert and a security event each (written directly: the roll-ups are what the pages read)."""
    models = [factories.catalog_model(name) for name in ("gpt-5-mini", "claude-haiku-4-5")]
    users = factories.UserFactory.create_batch(count)
    today = NOW.date()
    AIUsageDaily.objects.bulk_create(
        AIUsageDaily(
            user=user,
            usage_date=today - timedelta(days=day),
            provider_id=model.provider_id,
            model=model,
            request_count=2,
            success_count=2,
            total_tokens=100,
            cost=Decimal("0.50"),
        )
        for user in users
        for day in range(30)
        for model in models
    )
    AIUsageMonthly.objects.bulk_create(
        AIUsageMonthly(
            user=user, year=today.year, month=today.month, request_count=4, success_count=4
        )
        for user in users
    )
    for user in users:
        UsageAlert.objects.create(
            user=user,
            alert_type="warning",
            metric="tokens",
            threshold_percent=80,
            period_start=NOW.replace(day=1),
            value_at_trigger=80,
            limit_at_trigger=100,
        )
        factories.AuditLogFactory(user=user, event_type="login_failed", severity="warning")


@pytest.mark.parametrize("count", [1, 25])
@pytest.mark.parametrize("path", [OVERVIEW, USAGE, USAGE_CSV])
def test_query_counts_are_bounded(staff_client, django_assert_max_num_queries, count, path):
    many_rows(count)
    with django_assert_max_num_queries(25):
        response = staff_client.get(path, {"user": "", "tier": ""} if path != OVERVIEW else {})
    assert response.status_code == 200
