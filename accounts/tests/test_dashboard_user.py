"""The staff dashboard's user page (``/dashboard/users/<id>/``): access, the figures against
the data, empty states, escaping, bounded lists and query counts, and the links to it."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from accounts.models import AuditLog, User, UserProfile
from agents.models import AgentSession
from billing.models import PaymentHistory, SubscriptionTier, UsageAlert, UserSubscription
from usage import services
from usage.models import AIUsageMonthly
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)
TODAY = NOW.date()


def url(user_id: int) -> str:
    return reverse("dashboard:user", args=[user_id])


@pytest.fixture
def staff(db):
    return User.objects.create_superuser(email="boss@example.com", password="pw-1234567")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def record(user, model, *, when, cost="1.00", tokens=(1000, 500)):
    with transaction.atomic(), rls.service_context():
        return services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost=Decimal(cost),
            latency_ms=100,
            created_at=when,
        )


def text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def fill(user, staff, *, count: int) -> None:
    """``count`` sessions, payments, alerts and audit events of ``user``, a current plan and
    usage on ``count`` distinct recent days."""
    model = factories.catalog_model()
    factories.quota_for(user, "pro")
    UserProfile.objects.update_or_create(
        user=user, defaults={"company": "Acme <b>Corp</b>", "timezone": "Europe/Paris"}
    )
    UserSubscription.objects.create(
        user=user,
        tier=SubscriptionTier.objects.get(slug="pro"),
        status="active",
        billing_cycle="yearly",
        current_period_start=NOW - timedelta(days=3),
        current_period_end=NOW + timedelta(days=27),
        cancel_at_period_end=True,
    )
    for n in range(count):
        AgentSession.objects.create(
            user=user, title=f"Chat {n}", started_at=NOW - timedelta(minutes=count - n)
        )
        PaymentHistory.objects.create(
            user=user,
            amount=Decimal("20.00") + n,
            status="succeeded",
            payment_provider="stripe",
            provider_payment_id=f"pi_{user.pk}_{n}",
            description=f"Payment {n}",
        )
        UsageAlert.objects.create(
            user=user,
            alert_type="warning",
            metric="cost",
            threshold_percent=80,
            period_start=NOW - timedelta(days=40 * (n + 1)),
            value_at_trigger=Decimal(8),
            limit_at_trigger=Decimal(10),
        )
        AuditLog.objects.create(user=user, actor=staff, event_type=f"event_{n}")
        record(user, model, when=NOW - timedelta(days=n % 30), cost="0.50")


# --- Access ----------------------------------------------------------------------------------


def test_staff_see_the_page(staff_client, user):
    assert staff_client.get(url(user.pk)).status_code == 200


def test_a_signed_in_member_gets_a_404(client, user):
    client.force_login(user)
    assert client.get(url(user.pk)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_sign_in(client, user):
    response = client.get(url(user.pk))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_an_unknown_user_is_a_404(staff_client, user):
    assert staff_client.get(url(user.pk + 10_000)).status_code == 404


def test_the_page_is_not_in_the_navigation(staff_client, user):
    page = text(staff_client.get(url(user.pk)))
    assert '<nav class="dashboard-nav"' in page
    nav = page[page.index('<nav class="dashboard-nav"') :]
    assert f'href="/dashboard/users/{user.pk}/' not in nav[: nav.index("</nav>")]


# --- The figures -----------------------------------------------------------------------------


def test_the_figures_match_the_data(staff_client, staff):
    ann = factories.UserFactory(email="ann@example.com", full_name="Ann Lee")
    model = factories.catalog_model()
    factories.quota_for(ann, "pro")
    UserProfile.objects.update_or_create(
        user=ann, defaults={"company": "Acme", "timezone": "Europe/Paris", "locale": "fr"}
    )
    UserSubscription.objects.create(
        user=ann,
        tier=SubscriptionTier.objects.get(slug="pro"),
        status="active",
        billing_cycle="yearly",
        current_period_start=NOW - timedelta(days=3),
        current_period_end=NOW + timedelta(days=27),
        cancel_at_period_end=True,
    )
    record(ann, model, when=NOW, cost="1.25")
    record(ann, model, when=NOW, cost="0.75", tokens=(2000, 0))
    record(ann, model, when=NOW - timedelta(days=2), cost="3.00")
    record(ann, model, when=NOW - timedelta(days=45), cost="9.00")  # outside the chart
    AIUsageMonthly.objects.create(
        user=ann, year=2001, month=1, request_count=1, success_count=1, cost=Decimal(1)
    )  # older than 12 months: not shown
    session = AgentSession.objects.create(user=ann, title="Trip planning")
    PaymentHistory.objects.create(
        user=ann,
        amount=Decimal("20.00"),
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id="pi_1",
        description="Pro plan",
    )
    AuditLog.objects.create(user=ann, actor=staff, event_type="tier_changed")
    AuditLog.objects.create(user=ann, actor=ann, event_type="login_succeeded")
    AuditLog.objects.create(user=ann, event_type="password_reset_requested")

    response = staff_client.get(url(ann.pk))
    page = text(response)

    summary = response.context["summary"]
    assert (summary.email, summary.full_name, summary.company) == (
        "ann@example.com",
        "Ann Lee",
        "Acme",
    )
    assert "Europe/Paris" in page and ">fr<" in page
    plan = response.context["plan"]
    assert (plan.tier, plan.status, plan.billing_cycle) == ("Pro", "Active", "Yearly")
    assert plan.cancel_at_period_end

    quota = summary.quota
    tier = SubscriptionTier.objects.get(slug="pro")
    assert quota.tokens_limit == tier.monthly_token_limit
    in_month = [NOW, NOW - timedelta(days=2)]
    month_start = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    booked = sum(1 for when in in_month if when >= month_start)
    expected_tokens = 3500 + (1500 if booked == 2 else 0)
    assert quota.tokens_used == expected_tokens
    assert f'<progress max="100" value="{quota.tokens_bar}"' in page
    assert f'<progress max="100" value="{quota.cost_bar}"' in page

    tokens = response.context["tokens_chart"]
    cost = response.context["cost_chart"]
    assert len(tokens["labels"]) == 30 and tokens["labels"][-1] == TODAY.isoformat()
    assert tokens["datasets"][0]["data"][-1] == 3500
    assert tokens["datasets"][0]["data"][-3] == 1500
    assert tokens["datasets"][0]["data"][-2] == 0  # an empty day is included
    assert cost["datasets"][0]["data"][-1] == 2.0
    assert cost["datasets"][0]["data"][-3] == 3.0
    assert sum(tokens["datasets"][0]["data"]) == 5000
    assert 'data-chart="chart-user-tokens"' in page and 'id="chart-user-tokens"' in page
    assert 'data-chart="chart-user-cost"' in page and 'id="chart-user-cost"' in page

    months = response.context["months"]
    assert all(m.year > 2001 for m in months)
    assert sum(m.cost for m in months) == Decimal("14.00")
    assert months[0].label == f"{TODAY.year}-{TODAY.month:02d}"

    assert reverse("dashboard:agent_session", args=[session.pk]) in page
    assert "Trip planning" in page and "Pro plan" in page
    actors = {e.event_type: e.actor for e in response.context["audit_events"]}
    assert actors == {
        "tier_changed": "boss@example.com",
        "login_succeeded": "self",
        "password_reset_requested": "system",
    }
    assert reverse("admin:accounts_user_change", args=[ann.pk]) in page
    # The Content-Security-Policy holds: no inline script (but JSON data), style or handler.
    assert not re.search(
        r'<script(?![^>]*\b(src=|type="application/json"))|<style|\son\w+=|\sstyle=', page
    )


def test_the_impersonate_button_is_shown_only_when_allowed(staff_client, staff, user):
    page = text(staff_client.get(url(user.pk)))
    assert 'id="impersonate-form"' in page
    assert f'action="{reverse("hijack:acquire")}"' in page
    assert f'name="user_pk" value="{user.pk}"' in page
    other_staff = User.objects.create_user(
        email="colleague@example.com", password="pw-1234567", is_staff=True
    )
    assert 'id="impersonate-form"' not in text(staff_client.get(url(other_staff.pk)))
    assert 'id="impersonate-form"' not in text(staff_client.get(url(staff.pk)))


def test_the_alerts_are_listed_with_a_link_to_the_quotas_page(staff_client, user):
    UsageAlert.objects.create(
        user=user,
        alert_type="exceeded",
        metric="tokens",
        threshold_percent=100,
        period_start=NOW,
        value_at_trigger=Decimal(120),
        limit_at_trigger=Decimal(100),
    )
    page = text(staff_client.get(url(user.pk)))
    assert page.count('class="alert-row"') == 1
    assert f'href="{reverse("dashboard:quotas")}#alerts"' in page


# --- Empty states and escaping ---------------------------------------------------------------


def test_a_user_without_rows_has_real_empty_states(staff_client):
    # A bare users row (an account made before registration made its rows): every section empty.
    newbie = factories.UserFactory(email="new@example.com", last_login=None)
    page = text(staff_client.get(url(newbie.pk)))
    for message in (
        "No current subscription.",
        "No quota.",
        "No usage in the last 30 days.",
        "No usage in the last 12 months.",
        "No agent sessions.",
        "No payments.",
        "No quota alerts.",
    ):
        assert message in page, message
    assert "<canvas" not in page
    assert "never" in page  # never signed in


def test_user_text_is_escaped(staff_client, staff):
    evil = factories.UserFactory(full_name="<script>alert(1)</script>")
    UserProfile.objects.update_or_create(user=evil, defaults={"company": "<b>Acme</b>"})
    AgentSession.objects.create(user=evil, title="<script>steal()</script>")
    page = text(staff_client.get(url(evil.pk)))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>steal()</script>" not in page
    assert "&lt;b&gt;Acme&lt;/b&gt;" in page


# --- Bounded lists and query counts ----------------------------------------------------------


def test_the_lists_are_bounded(staff_client, staff, user):
    fill(user, staff, count=25)
    response = staff_client.get(url(user.pk))
    page = text(response)
    assert len(response.context["sessions"]) == 10
    assert response.context["sessions"][0].title == "Chat 24"  # newest first
    assert len(response.context["payments"]) == 10
    assert len(response.context["alerts"]) == 10
    assert len(response.context["audit_events"]) == 20
    assert page.count('class="session-row"') == 10
    assert "Acme &lt;b&gt;Corp&lt;/b&gt;" in page


@pytest.mark.parametrize("count", [1, 30])
def test_the_query_count_is_bounded(
    staff_client, staff, user, count, django_assert_max_num_queries
):
    fill(user, staff, count=count)
    # 8 reads for the page; the rest is the session, the signed-in user and the RLS context.
    with django_assert_max_num_queries(19):
        text(staff_client.get(url(user.pk)))


# --- Links from the other dashboard pages ----------------------------------------------------


def test_the_overviews_top_users_link_here(staff_client, user):
    record(user, factories.catalog_model(), when=NOW, cost="2.00")
    overview = text(staff_client.get(reverse("dashboard:overview")))
    link = url(user.pk)
    assert f'href="{link}"' in overview
    assert user.email in text(staff_client.get(link))


def test_the_agents_and_audit_pages_link_here(staff_client, staff, user):
    AgentSession.objects.create(user=user, title="Hello")
    AuditLog.objects.create(user=user, actor=user, event_type="login_succeeded")
    link = f'href="{url(user.pk)}"'
    assert link in text(staff_client.get(reverse("dashboard:agents")))
    assert link in text(staff_client.get(reverse("dashboard:audit")))
