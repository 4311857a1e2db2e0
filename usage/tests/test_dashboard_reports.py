"""The staff dashboard's monthly report (``/dashboard/reports/``, ``/dashboard/reports.csv``):
access, the figures and their month-over-month change, the month asked for, CSV, query count."""

import csv
import io
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from billing.models import PaymentHistory, SubscriptionTier, UserSubscription
from usage import monthly_reports
from usage.models import AIUsageDaily, AIUsageMonthly
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/reports/"
CSV = "/dashboard/reports.csv"
MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)
TODAY = date(2026, 5, 20)  # the clock of these tests: April is the last complete month


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(monthly_reports, "today", lambda: TODAY)


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_user(
        email="staff@example.com", password="pw-1234567", is_staff=True
    )
    client.force_login(staff)
    return client


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def subscribe(user, slug: str, since: date) -> None:
    UserSubscription.objects.create(
        user=user,
        tier=SubscriptionTier.objects.get(slug=slug),
        status="active",
        current_period_start=at(since),
        current_period_end=at(date(2026, 12, 1)),
        created_at=at(since),
    )


def used(user, month: date, *, model="gpt-5-mini", requests=10, tokens=1000, cost="1.00"):
    """A month's usage of one user as the roll-ups hold it (one day, and the month)."""
    catalog = factories.catalog_model(model)
    AIUsageDaily.objects.create(
        user=user, usage_date=month.replace(day=10), provider_id=catalog.provider_id,
        model=catalog, request_count=requests, success_count=requests, input_tokens=tokens,
        total_tokens=tokens, cost=Decimal(cost),
    )  # fmt: skip
    monthly, _ = AIUsageMonthly.objects.get_or_create(user=user, year=month.year, month=month.month)
    AIUsageMonthly.objects.filter(pk=monthly.pk).update(
        request_count=monthly.request_count + requests,
        success_count=monthly.success_count + requests,
        input_tokens=monthly.input_tokens + tokens,
        total_tokens=monthly.total_tokens + tokens,
        cost=monthly.cost + Decimal(cost),
    )


PAYMENT_IDS = itertools.count(1)


def paid(user, when: date, amount: str, status="succeeded"):
    PaymentHistory.objects.create(
        user=user, amount=Decimal(amount), status=status, payment_provider="stripe",
        provider_payment_id=f"pi_{next(PAYMENT_IDS)}", created_at=at(when),
    )  # fmt: skip


@pytest.fixture
def two_months():
    """March and April: Ann on pro both months, Bo on free (idle in March), Cy joined in April
    on free; payments of both months; both reports stored."""
    ann = factories.UserFactory(email="ann@example.com", full_name="Ann")
    bo = factories.UserFactory(email="bo@example.com", full_name="Bo")
    cy = factories.UserFactory(email="=cy@example.com", full_name="Cy")  # a formula
    subscribe(ann, "pro", date(2026, 1, 1))
    subscribe(bo, "free", date(2026, 1, 1))
    subscribe(cy, "free", date(2026, 4, 5))
    used(ann, MARCH, requests=10, tokens=1000, cost="2.00")
    used(ann, APRIL, requests=20, tokens=3000, cost="5.00")
    used(ann, APRIL, model="claude-haiku-4-5", requests=5, tokens=500, cost="1.00")
    used(bo, APRIL, requests=4, tokens=400, cost="0.40")
    used(cy, APRIL, requests=1, tokens=100, cost="0.10")
    paid(ann, date(2026, 3, 1), "20.00")
    paid(ann, date(2026, 4, 1), "20.00")
    paid(bo, date(2026, 4, 30), "9.00")
    paid(bo, date(2026, 4, 12), "9.00", status="failed")  # not revenue
    paid(cy, date(2026, 5, 1), "9.00")  # May
    for month in (MARCH, APRIL):
        monthly_reports.monthly_report_generate(month=month)
    return {"ann": ann, "bo": bo, "cy": cy}


def text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PAGE, CSV])
def test_staff_see_the_pages(staff_client, path):
    assert staff_client.get(path).status_code == 200


@pytest.mark.parametrize("path", [PAGE, CSV])
def test_a_signed_in_member_gets_a_404(client, user, path):
    client.force_login(user)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [PAGE, CSV])
def test_an_anonymous_visitor_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_page_is_in_the_navigation(staff_client):
    page = text(staff_client.get(reverse("dashboard:usage")))
    assert f'href="{PAGE}">Monthly reports</a>' in page
    assert f'href="{PAGE}" aria-current="page"' in text(staff_client.get(PAGE))


# --- The figures -----------------------------------------------------------------------------


def test_the_report_holds_the_months_figures_and_their_change(two_months):
    report = monthly_reports.monthly_report(month=APRIL)

    total = report.total
    assert (total.subscribers.current, total.subscribers.previous) == (3, 2)
    assert (total.users.current, total.users.previous) == (3, 1)
    assert (total.requests.current, total.requests.previous) == (30, 10)
    assert (total.tokens.current, total.tokens.previous) == (4000, 1000)
    assert (total.cost.current, total.cost.previous) == (Decimal("6.5"), Decimal("2"))
    assert total.requests.text == "+20 (+200.0 %)"
    assert total.cost.text == "+$4.50 (+225.0 %)"

    plans = {line.key: line for line in report.tiers}
    assert [line.key for line in report.tiers] == ["free", "pro"]  # the tiers' order
    assert (plans["free"].subscribers.current, plans["free"].subscribers.previous) == (2, 1)
    assert (plans["free"].users.current, plans["free"].users.previous) == (2, 0)
    assert plans["free"].users.text == "+2 (new)"
    assert (plans["pro"].requests.current, plans["pro"].requests.previous) == (25, 10)

    (usd,) = report.revenue
    assert (usd.currency, usd.amount.current, usd.amount.previous) == ("USD", 29, 20)
    assert (usd.payments.current, usd.payers.current) == (2, 2)

    assert [u.email for u in report.top_users] == ["ann@example.com", "bo@example.com",
                                                  "=cy@example.com"]  # fmt: skip
    ann = report.top_users[0]
    assert (ann.cost.current, ann.cost.previous) == (Decimal("6"), Decimal("2"))
    assert report.top_users[1].cost.previous == 0  # nothing in March

    assert [m.key for m in report.models] == ["openai/gpt-5-mini", "anthropic/claude-haiku-4-5"]
    assert (report.models[0].requests.current, report.models[0].requests.previous) == (25, 10)
    assert (report.models[1].requests.current, report.models[1].requests.previous) == (5, 0)


def test_the_page_shows_the_last_complete_month_by_default(staff_client, two_months):
    page = text(staff_client.get(PAGE))
    assert "2026-04 (UTC) against 2026-03" in page
    assert 'value="2026-04"' in page
    assert "+20 (+200.0 %)" in page  # requests
    assert "+$4.50 (+225.0 %)" in page  # cost
    ann_page = reverse("dashboard:user", args=[two_months["ann"].pk])
    assert f'<a href="{ann_page}">ann@example.com</a>' in page
    assert "openai/gpt-5-mini" in page
    assert '"chart-plans"' in page  # the users-by-plan chart's data
    assert 'id="no-report"' not in page


def test_a_month_without_a_previous_report_shows_unknown_changes(staff_client, two_months):
    page = text(staff_client.get(PAGE, {"month": "2026-03"}))
    assert "2026-03 (UTC) against 2026-02" in page
    assert 'id="no-previous"' in page
    report = staff_client.get(PAGE, {"month": "2026-03"}).context["report"]
    assert report.total.requests.previous is None and report.total.requests.text == "—"


def test_a_month_without_a_report_says_how_to_make_one(staff_client, two_months):
    page = text(staff_client.get(PAGE, {"month": "2026-01"}))
    assert 'id="no-report"' in page
    assert "manage.py monthly_report --month 2026-01" in page


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", monthly_reports.MONTH_MALFORMED),
        ("0001-01", monthly_reports.MONTH_TOO_EARLY),
        ("April", monthly_reports.MONTH_MALFORMED),
        ("2026-05", "2026-05 has not ended yet: the last complete month is 2026-04."),
        ("2026-06", "2026-06 is in the future: the last complete month is 2026-04."),
    ],
)
def test_a_bad_month_is_a_form_error_and_a_400_csv(staff_client, month, message):
    response = staff_client.get(PAGE, {"month": month})
    assert message in text(response)
    assert response.context["report"] is None
    response = staff_client.get(CSV, {"month": month})
    assert (response.status_code, response.content.decode()) == (400, message)


# --- CSV -------------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_csv_holds_every_figure_with_its_change(staff_client, two_months):
    response = staff_client.get(CSV, {"month": "2026-04"})
    assert response["Content-Disposition"] == 'attachment; filename="report-2026-04.csv"'
    header, *rows = _csv(response)
    assert header == monthly_reports.CSV_HEADER
    assert ["2026-04", "total", "all", "requests", "30", "10", "20", "200.0"] in rows
    assert ["2026-04", "tier", "free", "subscribers", "2", "1", "1", "100.0"] in rows
    assert ["2026-04", "revenue", "USD", "amount", "29.000000", "20.000000", "9.000000",
            "45.0"] in rows  # fmt: skip
    assert [
        "2026-04",
        "top_user",
        "bo@example.com",
        "cost",
        "0.400000",
        "0",
        "0.400000",
        "",
    ] in rows
    # A cell a spreadsheet would run as a formula is defused.
    assert ["2026-04", "top_user", "'=cy@example.com", "requests", "1", "0", "1", ""] in rows
    report = monthly_reports.monthly_report(month=APRIL)
    assert rows == monthly_reports.csv_rows(report)


# --- Queries ---------------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_the_users(
    staff_client, two_months, django_assert_max_num_queries
):
    for n in range(15):
        user = factories.UserFactory()
        subscribe(user, "team", date(2026, 2, 1))
        used(user, MARCH, cost=f"{n}.50")
        used(user, APRIL, cost=f"{n}.25")
        paid(user, date(2026, 4, 3), "99.00")
    monthly_reports.monthly_report_generate(month=APRIL)
    with django_assert_max_num_queries(14):
        page = text(staff_client.get(PAGE))
    assert page.count("example.com</a>") == monthly_reports.TOP
    with django_assert_max_num_queries(14):
        assert len(_csv(staff_client.get(CSV))) > 1


# --- The change's text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (monthly_reports.Change(30, 10), "+20 (+200.0 %)"),
        (monthly_reports.Change(1200, 1500), "-300 (-20.0 %)"),
        (monthly_reports.Change(5, 0), "+5 (new)"),
        (monthly_reports.Change(5, 5), "no change"),
        (monthly_reports.Change(5, None), "—"),
        (monthly_reports.Change(Decimal("1"), Decimal("2"), money=True), "-$1.00 (-50.0 %)"),
        (monthly_reports.Change(Decimal("1234.5"), Decimal("0"), money=True), "+$1,234.50 (new)"),
    ],
)
def test_a_change_reads_as_a_sign_an_amount_and_a_percentage(change, text):
    assert change.text == text
