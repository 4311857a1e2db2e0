"""Drill-down (issue 19): the daily chart and table of the usage pages, the request log of a
day for a provider or model (staff and own), and the spend per API token."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from accounts import tokens
from usage import drilldown, services
from usage.models import AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
NOON_YESTERDAY = datetime.combine(YESTERDAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
LOG = "/dashboard/usage/requests/"
ME_LOG = "/me/usage/requests/"


def record(user, model, *, when=NOON_YESTERDAY, cost="1.00", token=None, session=None):
    with transaction.atomic(), rls.service_context():
        return services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=1000,
            output_tokens=500,
            cost=Decimal(cost),
            latency_ms=120,
            created_at=when,
            access_token_id=token,
            agent_session_id=session,
        )


def issue_token(user, name):
    with transaction.atomic(), rls.user_context(user):
        return tokens.token_issue(user_id=user.pk, name=name).token


@pytest.fixture
def gpt():
    return factories.catalog_model("gpt-5-mini")


@pytest.fixture
def claude():
    return factories.catalog_model("claude-haiku-4-5")


@pytest.fixture
def alice():
    return factories.UserFactory(email="alice@example.com", email_verified_at=NOW)


@pytest.fixture
def bob():
    return factories.UserFactory(email="bob@example.com", email_verified_at=NOW)


@pytest.fixture
def staff_client(client):
    client.force_login(factories.UserFactory(email="staff@example.com", is_staff=True))
    return client


# The usage page's daily chart and table ------------------------------------------------------


def _chart(response, chart_id="chart-daily"):
    html = response.content.decode()
    start = html.index(f'id="{chart_id}"')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_the_staff_daily_chart_stacks_providers_and_links_each_bar(
    staff_client, alice, bob, gpt, claude
):
    record(alice, gpt, cost="2.50")
    record(bob, claude, cost="1.25")
    response = staff_client.get("/dashboard/usage/")
    assert response.status_code == 200
    chart = _chart(response)
    assert chart["stacked"] and chart["money"]
    day = chart["labels"].index(YESTERDAY.isoformat())
    by_label = {s["label"]: s["data"][day] for s in chart["datasets"]}
    assert by_label == {gpt.provider.name: 2.5, claude.provider.name: 1.25}
    index = [s["label"] for s in chart["datasets"]].index(gpt.provider.name)
    link = chart["links"][index][day]
    assert link == f"{LOG}?day={YESTERDAY.isoformat()}&provider={gpt.provider.slug}"
    # An empty bar links nowhere; the table lists the same figures with the same links.
    assert chart["links"][index][chart["labels"].index(TODAY.isoformat())] is None
    html = response.content.decode()
    assert f'href="{link.replace("&", "&amp;")}"' in html
    assert 'id="daily-table"' in html


def test_the_daily_chart_switches_to_tokens_by_model(staff_client, alice, gpt):
    record(alice, gpt)
    response = staff_client.get(
        "/dashboard/usage/", {"chart_by": "model", "chart_metric": "tokens"}
    )
    chart = _chart(response)
    assert not chart["money"]
    (dataset,) = chart["datasets"]
    assert gpt.display_name in dataset["label"]
    assert dataset["data"][chart["labels"].index(YESTERDAY.isoformat())] == 1500
    day = chart["labels"].index(YESTERDAY.isoformat())
    assert chart["links"][0][day].endswith(f"&model={gpt.pk}")
    # Unknown switches fall back to the defaults, never an error.
    assert staff_client.get("/dashboard/usage/", {"chart_by": "\x00"}).status_code == 200


# The staff request log ---------------------------------------------------------------------


def test_the_request_log_lists_the_days_requests_of_the_provider_by_cost(
    staff_client, alice, bob, gpt, claude
):
    token = issue_token(alice, "laptop")
    session = factories.AgentSessionFactory(user=alice)
    cheap = record(alice, gpt, cost="0.10")
    dear = record(bob, gpt, cost="3.00")
    middle = record(alice, gpt, cost="1.00", token=token.pk, session=session.pk)
    record(alice, claude, cost="9.00")  # another provider
    record(alice, gpt, cost="8.00", when=NOON_YESTERDAY - timedelta(days=1))  # another day
    response = staff_client.get(LOG, {"day": YESTERDAY.isoformat(), "provider": gpt.provider.slug})
    assert response.status_code == 200
    rows = [row.pk for row in response.context["log"].page.object_list]
    assert rows == [dear, middle, cheap]
    html = response.content.decode()
    assert f'href="/dashboard/users/{alice.pk}/"' in html
    assert f'href="/dashboard/agents/{session.pk}/"' in html
    assert "laptop" in html and token.prefix in html
    assert "$3.00" in html and "$0.1000" in html
    assert 'class="table-scroll"' in html


def test_the_request_log_filters_by_model(staff_client, alice, gpt):
    other = factories.catalog_model("gpt-5")
    mine = record(alice, gpt)
    record(alice, other)
    response = staff_client.get(LOG, {"day": YESTERDAY.isoformat(), "model": gpt.pk})
    assert response.status_code == 200
    assert [row.pk for row in response.context["log"].page.object_list] == [mine]


def test_the_request_log_is_paginated_with_bounded_queries(
    staff_client, alice, gpt, django_assert_max_num_queries
):
    sent_by = [issue_token(alice, f"t{n}").pk for n in range(3)]
    for n in range(drilldown.LOG_PAGE_SIZE + 5):
        record(alice, gpt, cost=f"{n + 1}.00", token=sent_by[n % 3])
    params = {"day": YESTERDAY.isoformat(), "provider": gpt.provider.slug}
    with django_assert_max_num_queries(15):
        first = staff_client.get(LOG, params)
    costs = [row.cost for row in first.context["log"].page.object_list]
    assert len(costs) == drilldown.LOG_PAGE_SIZE
    assert costs == sorted(costs, reverse=True)
    with django_assert_max_num_queries(15):
        second = staff_client.get(LOG, {**params, "page": 2})
    assert [row.cost for row in second.context["log"].page.object_list] == [
        Decimal(f"{n}.00") for n in (5, 4, 3, 2, 1)
    ]
    # A page past the end or not a number shows a real page, never an error.
    assert staff_client.get(LOG, {**params, "page": "\x00"}).status_code == 200
    assert staff_client.get(LOG, {**params, "page": "99999"}).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"day": "yesterday", "provider": "openai"},
        {"day": "2026-02-30", "provider": "openai"},
        {"day": "0000-01-01", "provider": "openai"},
        {"day": "0001-01-01", "provider": "openai"},
        {"day": "294277-01-01", "provider": "openai"},
        {"day": "9999-12-31", "provider": "openai"},
        {"day": "2026-01-01\x00", "provider": "openai"},
        {"day": "2026-01-01", "provider": "open\x00ai"},
        {"day": "2026-01-01", "provider": "no-such-provider"},
        {"day": "2026-01-01", "model": "999999"},
        {"day": "2026-01-01", "model": "99999999999999999999999"},
        {"day": "2026-01-01", "model": "-1"},
        {"day": "2026-01-01", "model": "\x00"},
        {"day": "2026-01-01"},
        {"day": "2026-01-01", "provider": "openai", "model": "1"},
        {"provider": "openai"},
        {},
    ],
)
def test_bad_request_log_parameters_are_a_form_error(staff_client, gpt, params):
    response = staff_client.get(LOG, params)
    assert response.status_code == 400
    assert 'id="log-errors"' in response.content.decode()


def test_the_staff_request_log_is_not_for_other_users(client, alice, gpt):
    client.force_login(alice)
    params = {"day": YESTERDAY.isoformat(), "provider": gpt.provider.slug}
    assert client.get(LOG, params).status_code == 404


# The user's own request log ----------------------------------------------------------------


def test_my_request_log_shows_only_my_rows(client, alice, bob, gpt):
    token = issue_token(alice, "cli")
    session = factories.AgentSessionFactory(user=alice)
    mine = record(alice, gpt, cost="0.50", token=token.pk, session=session.pk)
    record(bob, gpt, cost="5.00")
    client.force_login(alice)
    response = client.get(ME_LOG, {"day": YESTERDAY.isoformat(), "provider": gpt.provider.slug})
    assert response.status_code == 200
    assert [row.pk for row in response.context["log"].page.object_list] == [mine]
    html = response.content.decode()
    assert f'href="/me/sessions/{session.pk}/"' in html
    assert "cli" in html and "bob@example.com" not in html and "/dashboard/" not in html


def test_row_level_security_keeps_other_users_rows_out_of_the_log(alice, bob, gpt):
    """Without the user filter, the runtime role still sees only the user's own rows."""
    mine = record(alice, gpt)
    record(bob, gpt)
    with transaction.atomic(), rls.user_context(alice):
        log = drilldown.request_log(day=YESTERDAY, provider_id=gpt.provider_id)
        assert [row.pk for row in log.page.object_list] == [mine]
    with transaction.atomic(), rls.user_context(bob):
        log = drilldown.request_log(day=YESTERDAY, provider_id=gpt.provider_id, user_id=alice.pk)
        assert list(log.page.object_list) == []


def test_my_usage_page_links_its_daily_chart_to_my_log(client, alice, gpt):
    record(alice, gpt, cost="0.75")
    client.force_login(alice)
    response = client.get("/me/usage/")
    assert response.status_code == 200
    chart = _chart(response)
    day = chart["labels"].index(YESTERDAY.isoformat())
    assert chart["datasets"][0]["data"][day] == 0.75
    assert chart["links"][0][day] == (
        f"{ME_LOG}?day={YESTERDAY.isoformat()}&provider={gpt.provider.slug}"
    )


def test_my_request_log_refuses_bad_parameters(client, alice):
    client.force_login(alice)
    response = client.get(ME_LOG, {"day": "2026-13-01", "provider": "openai"})
    assert response.status_code == 400


# Spend per API token -----------------------------------------------------------------------


def test_spend_per_token_matches_the_rows(client, alice, bob, gpt):
    laptop, ci = issue_token(alice, "laptop"), issue_token(alice, "ci")
    when = NOW - timedelta(minutes=5)
    record(alice, gpt, cost="1.50", token=laptop.pk, when=when)
    record(alice, gpt, cost="0.25", token=laptop.pk, when=when)
    record(alice, gpt, cost="2.00", token=ci.pk, when=when)
    record(alice, gpt, cost="0.10", when=when)  # no token
    record(bob, gpt, cost="7.00", token=issue_token(bob, "bobs").pk, when=when)
    with transaction.atomic(), rls.user_context(alice):
        spends = {
            s.name: (s.requests, s.cost) for s in drilldown.token_spend_this_month(user_id=alice.pk)
        }
    expected = {"laptop": (2, Decimal("1.75")), "ci": (1, Decimal("2.00"))}
    expected["No token"] = (1, Decimal("0.10"))
    assert spends == expected
    rows = AIUsageRequest.objects.filter(user=alice, access_token_id=laptop.pk)
    assert sum(row.cost for row in rows) == Decimal("1.75")
    client.force_login(alice)
    html = client.get("/me/tokens/").content.decode()
    assert "$1.75" in html and "$2.00" in html and 'id="spend-no-token"' in html
    assert "$7.00" not in html


def test_the_360_page_shows_spend_per_token(staff_client, alice, gpt):
    token = issue_token(alice, "desktop")
    record(alice, gpt, cost="4.00", token=token.pk, when=NOW - timedelta(minutes=1))
    response = staff_client.get(f"/dashboard/users/{alice.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    section = html[html.index('id="token-spend"') :]
    assert "desktop" in section and "$4.00" in section
