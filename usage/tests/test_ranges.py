"""Ranges and honest comparisons on the usage pages: the staff overview compares this month
to date with the same days of last month, the staff usage page (/dashboard/usage/) and the
user's (/me/usage/) take quick ranges, fill their date inputs with the range in force, mark
the current quick range and compare their totals with the period before; hostile ranges are a
form error above the default range, never a 500. "Today" is fixed at 2025-12-07 (UTC)."""

import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import transaction

from usage import services
from usage.dashboard_selectors import periods
from usage.forms import RANGE_UNKNOWN
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

OVERVIEW = "/dashboard/"
USAGE = "/dashboard/usage/"
USAGE_CSV = "/dashboard/usage.csv"
ME_USAGE = "/me/usage/"
TODAY = date(2025, 12, 7)
MARKED_RANGE = re.compile(r'data-range="[^"]+" aria-current="true"')


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=UTC)


def record(user, model, day: str, cost: str):
    with transaction.atomic(), rls.service_context():
        services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=1000,
            output_tokens=0,
            cost=Decimal(cost),
            latency_ms=100,
            created_at=at(day),
        )


@pytest.fixture(autouse=True)
def today(monkeypatch):
    monkeypatch.setattr(periods, "today_utc", lambda now=None: TODAY)
    return TODAY


@pytest.fixture
def usage():
    """Alice: Nov 3 ($2.00), Nov 20 ($5.00), Dec 3 ($1.00); Bob: Dec 6 ($4.00), on Claude."""
    gpt = factories.catalog_model("gpt-5-mini")
    claude = factories.catalog_model("claude-haiku-4-5")
    alice = factories.UserFactory(email="alice@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    record(alice, gpt, "2025-11-03", "2.00")
    record(alice, gpt, "2025-11-20", "5.00")
    record(alice, gpt, "2025-12-03", "1.00")
    record(bob, claude, "2025-12-06", "4.00")
    return {"gpt": gpt, "claude": claude, "alice": alice, "bob": bob}


@pytest.fixture
def staff_client(client):
    client.force_login(factories.UserFactory(email="staff@example.com", is_staff=True))
    return client


def body(response, status: int = 200) -> str:
    assert response.status_code == status, response.content[:300]
    return html.unescape(response.content.decode())


def plain(page: str) -> str:
    """The page's text without its tags."""
    return re.sub(r"<[^>]+>", "", page)


# --- The overview --------------------------------------------------------------------------


def test_the_overview_compares_dec_1_to_7_with_nov_1_to_7_not_all_of_november(staff_client, usage):
    response = staff_client.get(OVERVIEW)
    page = body(response)
    month = response.context["kpis"].month
    assert (month.period, month.previous) == (
        periods.Period(date(2025, 12, 1), TODAY),
        periods.Period(date(2025, 11, 1), date(2025, 11, 7)),
    )
    # Dec 1-7: $1 + $4; Nov 1-7: $2 (Nov 20's $5 is not the same days).
    assert (month.now.cost, month.before.cost) == (Decimal(5), Decimal(2))
    assert (month.now.users, month.before.users) == (2, 1)
    assert month.cost.text == "+150.0 %"
    assert "vs Nov 1\u20137" in page
    assert "Dec 1\u20137 against Nov 1\u20137" in page
    assert "+150.0 % vs Nov 1\u20137: $2.00" in plain(page)
    # Today (nothing yet) against all of yesterday (Bob's $4).
    day = response.context["kpis"].today
    assert day.label == "vs all of Dec 6"
    assert (day.now.cost, day.before.cost) == (Decimal(0), Decimal(4))
    assert "-100.0 % vs all of Dec 6: $4.00" in plain(page)


def test_the_overview_says_dash_when_the_previous_figure_is_zero(staff_client):
    gpt = factories.catalog_model("gpt-5-mini")
    record(factories.UserFactory(), gpt, "2025-12-02", "3.00")
    response = staff_client.get(OVERVIEW)
    assert response.context["kpis"].month.cost.text == "\u2014"
    assert "\u2014 vs Nov 1\u20137: $0.00" in plain(body(response))


def test_the_overview_at_a_month_end_compares_with_the_whole_shorter_month(
    staff_client, monkeypatch
):
    monkeypatch.setattr(periods, "today_utc", lambda now=None: date(2025, 3, 30))
    gpt = factories.catalog_model("gpt-5-mini")
    user = factories.UserFactory()
    record(user, gpt, "2025-01-31", "9.00")
    record(user, gpt, "2025-02-28", "3.00")
    record(user, gpt, "2025-03-30", "6.00")
    response = staff_client.get(OVERVIEW)
    month = response.context["kpis"].month
    assert month.previous == periods.Period(date(2025, 2, 1), date(2025, 2, 28))
    assert (month.now.cost, month.before.cost) == (Decimal(6), Decimal(3))
    assert "+100.0 % vs Feb 1\u201328: $3.00" in plain(body(response))
    # Today (the 30th, $6) against all of the 29th (nothing).
    assert response.context["kpis"].today.cost.text == "\u2014"


# --- The staff usage page ----------------------------------------------------------------------


def test_the_default_range_fills_the_inputs_and_marks_30_d(staff_client, usage):
    response = staff_client.get(USAGE)
    page = body(response)
    assert 'name="start" value="2025-11-08"' in page
    assert 'name="end" value="2025-12-07"' in page
    assert 'data-range="30d" aria-current="true"' in page
    assert len(MARKED_RANGE.findall(page)) == 1
    comparison = response.context["comparison"]
    assert comparison.previous == periods.Period(date(2025, 10, 9), date(2025, 11, 7))
    # Nov 20 + Dec 3 + Dec 6 against Nov 3.
    assert (comparison.now.cost, comparison.before.cost) == (Decimal(10), Decimal(2))
    assert "vs Oct 9\u2013Nov 7" in page


@pytest.mark.parametrize(
    ("name", "start", "end", "label", "now", "before"),
    [
        ("today", "2025-12-07", "2025-12-07", "vs all of Dec 6", "0", "4"),
        ("7d", "2025-12-01", "2025-12-07", "vs Nov 24\u201330", "5", "0"),
        ("30d", "2025-11-08", "2025-12-07", "vs Oct 9\u2013Nov 7", "10", "2"),
        ("month", "2025-12-01", "2025-12-07", "vs Nov 1\u20137", "5", "2"),
        ("last-month", "2025-11-01", "2025-11-30", "vs Oct 1\u201331", "7", "0"),
    ],
)
def test_each_quick_range_link_gives_its_range_and_comparison(
    staff_client, usage, name, start, end, label, now, before
):
    links = {link.name: link for link in staff_client.get(USAGE).context["quick_links"]}
    response = staff_client.get(links[name].href)
    page = body(response)
    assert f'name="start" value="{start}"' in page
    assert f'name="end" value="{end}"' in page
    assert f'data-range="{name}" aria-current="true"' in page
    assert len(MARKED_RANGE.findall(page)) == 1
    flt = response.context["tables"]["filter"]
    assert (flt.start.isoformat(), flt.end.isoformat()) == (start, end)
    comparison = response.context["comparison"]
    assert comparison.label == label
    assert (comparison.now.cost, comparison.before.cost) == (Decimal(now), Decimal(before))
    assert f'<span id="comparison-label">{label}</span>' in page
    # The CSV export is of the range in force.
    assert f"start={start}&end={end}" in response.context["csv_query"]


def test_dates_that_are_a_quick_range_mark_it(staff_client, usage):
    page = body(staff_client.get(USAGE, {"start": "2025-11-01", "end": "2025-11-30"}))
    assert 'data-range="last-month" aria-current="true"' in page
    page = body(staff_client.get(USAGE, {"start": "2025-11-02", "end": "2025-11-30"}))
    assert not MARKED_RANGE.findall(page)


def test_quick_ranges_keep_the_other_filters(staff_client, usage):
    provider = usage["gpt"].provider_id
    response = staff_client.get(USAGE, {"provider": provider, "start": "2025-11-01"})
    links = {link.name: link.href for link in response.context["quick_links"]}
    assert links["7d"] == f"{USAGE}?provider={provider}&range=7d"
    response = staff_client.get(links["month"])
    # Only GPT (Alice): Dec 3's $1 against Nov 3's $2; Bob's Claude is filtered out.
    comparison = response.context["comparison"]
    assert (comparison.now.cost, comparison.before.cost) == (Decimal(1), Decimal(2))
    assert comparison.cost.text == "-50.0 %"
    assert f'<option value="{provider}" selected>' in body(response)


def test_a_quick_range_wins_over_dates(staff_client, usage):
    response = staff_client.get(USAGE, {"range": "7d", "start": "2024-01-01", "end": "2024-01-02"})
    assert response.context["tables"]["filter"].start == date(2025, 12, 1)


HOSTILE = [
    ({"start": "2025-12-07", "end": "2025-12-01"}, "must not be after"),
    ({"start": "0000-01-01"}, "Enter a valid date."),
    ({"end": "10000-01-01"}, "Enter a valid date."),
    ({"start": "0001-01-01"}, "Enter a date between 1970-01-01 and 2999-12-31."),
    ({"end": "9999-12-31"}, "Enter a date between 1970-01-01 and 2999-12-31."),
    ({"start": "2025-12-01\x00"}, "Enter a valid date."),
    ({"range": "year"}, RANGE_UNKNOWN),
    ({"range": "7d\x00"}, RANGE_UNKNOWN),
    ({"range": "<script>alert(1)</script>"}, RANGE_UNKNOWN),
    ({"start": "2020-01-01", "end": "2021-06-01"}, "at most 366 days"),
]


@pytest.mark.parametrize(("params", "message"), HOSTILE)
def test_hostile_ranges_are_a_form_error_above_the_default_range(
    staff_client, usage, params, message
):
    response = staff_client.get(USAGE, params)
    page = body(response)
    assert message in page
    assert 'id="range-errors"' in page
    assert "<script>alert(1)</script>" not in response.content.decode()
    # The default range, shown and filled in.
    flt = response.context["tables"]["filter"]
    assert (flt.start, flt.end) == (date(2025, 11, 8), TODAY)
    assert 'name="start" value="2025-11-08"' in page
    assert 'data-range="30d" aria-current="true"' in page
    assert response.context["comparison"].before.cost == Decimal(2)
    # The export refuses the same query plainly.
    assert staff_client.get(USAGE_CSV, params).status_code == 400


def test_a_hostile_filter_beside_a_range_falls_back_to_the_default_too(staff_client, usage):
    response = staff_client.get(USAGE, {"range": "7d", "provider": "99999999999999999999999"})
    assert 'id="range-errors"' in body(response)
    assert response.context["tables"]["filter"].start == date(2025, 11, 8)
    assert all("provider" not in link.href for link in response.context["quick_links"])


def test_a_member_cannot_reach_the_staff_ranges(client, usage):
    client.force_login(usage["alice"])
    assert client.get(USAGE, {"range": "7d"}).status_code == 404
    assert client.get(OVERVIEW).status_code == 404


# --- The user's usage page ---------------------------------------------------------------------


def test_me_usage_takes_quick_ranges_and_compares_with_the_period_before(client, usage):
    client.force_login(usage["alice"])
    page = body(client.get(ME_USAGE))
    assert 'name="from" value="2025-11-08"' in page
    assert 'data-range="30d" aria-current="true"' in page
    response = client.get(ME_USAGE, {"range": "month"})
    page = body(response)
    assert 'name="from" value="2025-12-01"' in page
    assert 'name="to" value="2025-12-07"' in page
    assert 'data-range="month" aria-current="true"' in page
    comparison = response.context["comparison"]
    assert comparison.label == "vs Nov 1\u20137"
    # Alice's own: Dec 3's $1 against Nov 3's $2 (never Bob's Dec 6).
    assert (comparison.now.cost, comparison.before.cost) == (Decimal(1), Decimal(2))
    assert "-50.0 % vs Nov 1\u20137: $2.00" in plain(page)
    response = client.get(ME_USAGE, {"range": "7d"})
    assert response.context["comparison"].label == "vs Nov 24\u201330"
    assert "\u2014 vs Nov 24\u201330: $0.00" in plain(body(response))


def test_me_usage_quick_links_produce_their_ranges(client, usage):
    client.force_login(usage["bob"])
    for link in client.get(ME_USAGE).context["quick_links"]:
        response = client.get(link.href)
        report = response.context["report"]
        expected = periods.quick_range(link.name, today=TODAY)
        assert (report.date_from, report.date_to) == (expected.start, expected.end)
        assert f'data-range="{link.name}" aria-current="true"' in body(response)


@pytest.mark.parametrize(
    ("params", "message"),
    [(p, m.replace("must not be after", "must not be after the end date")) for p, m in HOSTILE],
)
def test_me_usage_hostile_ranges_show_the_default_range(client, usage, params, message):
    params = {
        {"start": "from", "end": "to"}.get(name, name): value for name, value in params.items()
    }
    client.force_login(usage["alice"])
    response = client.get(ME_USAGE, params)
    page = body(response, status=400)
    assert message in page
    assert 'id="range-errors"' in page
    report = response.context["report"]
    assert (report.date_from, report.date_to) == (date(2025, 11, 8), TODAY)
    assert 'name="from" value="2025-11-08"' in page


def test_the_exports_take_quick_ranges_too(staff_client, usage):
    response = staff_client.get(USAGE_CSV, {"range": "last-month"})
    assert response.status_code == 200
    assert 'filename="usage-2025-11-01-2025-11-30.csv"' in response["Content-Disposition"]
    staff_client.force_login(usage["alice"])
    response = staff_client.get("/me/usage.csv", {"range": "7d"})
    assert response.status_code == 200
    assert 'filename="usage-2025-12-01-2025-12-07.csv"' in response["Content-Disposition"]
    assert response.content.decode().count("\n") == 2  # the header and Dec 3
    assert staff_client.get("/me/usage.csv", {"range": "year"}).status_code == 400
