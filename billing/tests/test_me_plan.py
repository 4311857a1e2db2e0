"""/me/plan/ and /me/payments/: the user's plan changes and payment history."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import AuditLog, User
from accounts.services import user_register
from billing import errors, services, views
from billing.models import PaymentHistory, SubscriptionTier, UserQuota, UserSubscription
from witchcraft.platform import rls

pytestmark = pytest.mark.django_db

PLAN = "/me/plan/"
CHANGE = "/me/plan/change/"
RESUME = "/me/plan/resume/"
PAYMENTS = "/me/payments/"
LINK = "https://checkout.example/pro?prefilled_promo=1"


def _member(email="member@example.com") -> User:
    return User.objects.get(pk=user_register(email=email, password="Plan-test-9x!"))


def _on_tier(user, slug, **fields) -> UserSubscription:
    """Move the user to ``slug`` as a paid subscription would (as the service context)."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT change_user_tier(%s, %s)", [user.pk, slug])
    sub = UserSubscription.objects.get(user=user, status="active")
    if fields:
        UserSubscription.objects.filter(pk=sub.pk).update(**fields)
        sub.refresh_from_db()
    return sub


def _current(user) -> UserSubscription:
    return UserSubscription.objects.select_related("tier").get(
        user=user, status__in=["trialing", "active", "past_due"]
    )


def _end_period(user):
    """The owner moves the current subscription's and quota's period into the past."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE user_subscriptions SET current_period_start = now() - interval '31 days',"
            " current_period_end = now() - interval '1 minute'"
            " WHERE user_id = %s AND status IN ('active', 'trialing', 'past_due')",
            [user.pk],
        )


@pytest.fixture
def member(client):
    user = _member()
    client.force_login(user)
    return user


@pytest.fixture
def payments_on(settings):
    settings.BILLING_PROVIDER = "stripe"
    settings.BILLING_WEBHOOK_SECRET = "whsec_x"
    settings.BILLING_CHECKOUT_LINKS = {"pro": LINK}


# --- the page -------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in (PLAN, PAYMENTS):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/auth/login/")


def test_the_page_shows_the_current_plan_and_every_public_tier(client, member):
    response = client.get(PLAN)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Free" in body and "(yours)" in body
    for tier in SubscriptionTier.objects.filter(is_public=True, is_active=True):
        assert tier.name in body
    assert 'id="payments-unavailable"' in body  # no provider set up here
    assert 'id="upgrade-pro"' not in body


def test_with_a_provider_an_upgrade_goes_to_its_checkout_with_the_users_reference(
    client, member, payments_on
):
    page = client.get(PLAN)
    body = page.content.decode()
    assert 'id="upgrade-pro"' in body
    assert 'id="upgrade-team"' not in body  # no checkout link for team
    # Browsers hold the redirect after the form's POST to form-action: the provider is in it.
    assert "form-action 'self' https://checkout.example" in page["Content-Security-Policy"]

    response = client.post(CHANGE, {"tier": "pro"})

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://checkout.example/pro"
    query = parse_qs(target.query)
    assert query["client_reference_id"] == [str(member.pk)]
    assert query["prefilled_email"] == [member.email]
    assert query["prefilled_promo"] == ["1"]
    assert AuditLog.objects.filter(user=member, event_type="checkout_started").exists()
    assert _current(member).tier.slug == "free"  # nothing changes before the payment


def test_without_a_provider_the_page_allows_no_other_form_target(client, member):
    policy = client.get(PLAN)["Content-Security-Policy"].split("; ")
    assert "form-action 'self'" in policy


def test_without_a_provider_an_upgrade_is_refused_and_nothing_is_written(client, member):
    audit = AuditLog.objects.count()
    response = client.post(CHANGE, {"tier": "pro"})
    assert response.status_code == 400
    assert errors.UPGRADES_UNAVAILABLE in response.content.decode()
    assert AuditLog.objects.count() == audit


def test_a_tier_without_checkout_link_is_refused(client, member, payments_on):
    response = client.post(CHANGE, {"tier": "team"})
    assert response.status_code == 400
    assert errors.NO_CHECKOUT in response.content.decode()


@pytest.mark.parametrize("tier", ["", "nope", "enterprise<script>", "free"])
def test_a_bad_or_pointless_choice_is_a_400_that_writes_nothing(client, member, tier):
    subscriptions = list(UserSubscription.objects.values())
    response = client.post(CHANGE, {"tier": tier})
    assert response.status_code == 400
    assert 'id="plan-error"' in response.content.decode()
    assert list(UserSubscription.objects.values()) == subscriptions


# --- downgrades and cancellation ------------------------------------------------------------


def test_a_downgrade_waits_for_the_period_end_then_the_quota_follows(client, member):
    team = SubscriptionTier.objects.get(slug="team")
    pro = SubscriptionTier.objects.get(slug="pro")
    _on_tier(member, "team", payment_provider="stripe", provider_subscription_id="sub_9")
    assert UserQuota.objects.get(user=member).tokens_limit == team.monthly_token_limit

    response = client.post(CHANGE, {"tier": "pro"}, follow=True)

    assert "Your plan moves to Pro on" in response.content.decode()
    current = _current(member)
    assert (current.tier.slug, current.cancel_at_period_end) == ("team", True)
    assert current.scheduled_tier_id == pro.id
    assert UserQuota.objects.get(user=member).tokens_limit == team.monthly_token_limit
    assert 'id="scheduled-change"' in client.get(PLAN).content.decode()
    event = AuditLog.objects.get(user=member, event_type="subscription_change_scheduled")
    assert (event.details["from"], event.details["to"]) == ("team", "pro")

    _end_period(member)
    out = StringIO()
    call_command("monthly_maintenance", stdout=out)

    assert "subscriptions_downgraded: 1" in out.getvalue()
    current = _current(member)
    assert current.tier.slug == "pro"
    assert current.current_period_end > timezone.now()
    # The provider's subscription carries on, at the new tier.
    assert (current.payment_provider, current.provider_subscription_id) == ("stripe", "sub_9")
    assert UserQuota.objects.get(user=member).tokens_limit == pro.monthly_token_limit
    old = UserSubscription.objects.get(user=member, tier=team)
    assert old.status == "canceled"


def test_a_cancellation_moves_the_user_to_free_at_the_period_end(client, member):
    _on_tier(member, "pro")
    client.post(CHANGE, {"tier": "free"})
    assert _current(member).tier.slug == "pro"

    _end_period(member)
    call_command("monthly_maintenance", stdout=StringIO())

    assert _current(member).tier.slug == "free"
    free = SubscriptionTier.objects.get(slug="free")
    assert UserQuota.objects.get(user=member).tokens_limit == free.monthly_token_limit


def test_a_scheduled_change_can_be_undone(client, member):
    _on_tier(member, "pro")
    client.post(CHANGE, {"tier": "free"})

    response = client.post(RESUME, follow=True)

    assert views.RESUMED in response.content.decode()
    current = _current(member)
    assert (current.cancel_at_period_end, current.scheduled_tier_id) == (False, None)
    assert AuditLog.objects.filter(user=member, event_type="subscription_change_undone").exists()
    assert views.NOTHING_TO_RESUME in client.post(RESUME, follow=True).content.decode()


def test_a_user_cannot_schedule_a_change_for_someone_else():
    alice, bob = _member("alice@example.com"), _member("bob@example.com")
    _on_tier(bob, "pro")
    with (
        pytest.raises(errors.PlanError) as refused,
        transaction.atomic(),
        rls.user_context(alice),
    ):
        services.plan_schedule_change(user_id=bob.pk, tier_slug="free")
    assert refused.value.code == "forbidden"
    assert _current(bob).cancel_at_period_end is False


def test_the_runtime_role_cannot_write_subscriptions_directly(member):
    with (
        pytest.raises(DatabaseError),
        transaction.atomic(),
        rls.user_context(member),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE user_subscriptions SET tier_id = (SELECT id FROM subscription_tiers"
            " WHERE slug = 'enterprise') WHERE user_id = %s",
            [member.pk],
        )


# --- payments -------------------------------------------------------------------------------


def _payment(user, n, **fields):
    return PaymentHistory.objects.create(
        user=user,
        amount=Decimal("20.00"),
        currency="USD",
        status=fields.pop("status", "succeeded"),
        description=f"Invoice {n}",
        payment_provider="stripe",
        provider_payment_id=f"in_{user.pk}_{n}",
        **fields,
    )


def test_payments_lists_the_users_own_payments_newest_first(client, member):
    other = _member("other@example.com")
    for n in range(3):
        _payment(member, n, status="failed" if n == 1 else "succeeded")
    _payment(other, 99)

    body = client.get(PAYMENTS).content.decode()

    assert body.index("Invoice 2") < body.index("Invoice 0")
    assert "Invoice 99" not in body
    assert "Failed" in body


def test_payments_are_paginated_with_a_bounded_query_count(
    client, member, django_assert_max_num_queries
):
    for n in range(45):
        _payment(member, n)
    with django_assert_max_num_queries(20):  # the request's own set-up included
        first = client.get(PAYMENTS)
    assert first.content.decode().count("<tr>") == views.PAGE_SIZE + 1
    last = client.get(PAYMENTS + "?page=3").content.decode()
    assert last.count("<tr>") == 45 - 2 * views.PAGE_SIZE + 1
    assert client.get(PAYMENTS + "?page=abc").status_code == 200


def test_row_level_security_hides_other_users_payments_even_without_a_filter(member):
    other = _member("other@example.com")
    _payment(member, 1)
    _payment(other, 2)
    with transaction.atomic(), rls.user_context(member):
        seen = set(PaymentHistory.objects.values_list("user_id", flat=True))
    assert seen == {member.pk}


def test_the_past_due_warning_names_the_end_of_the_grace(client, member):
    _on_tier(member, "pro", status="past_due")
    body = client.get(PLAN).content.decode()
    assert 'id="past-due"' in body
    sub = _current(member)
    assert sub.current_period_end + timedelta(days=7) > timezone.now()


# --- one flow: the page and services.plan_change ------------------------------------------------


def _scheduled(user) -> tuple:
    event = AuditLog.objects.get(user=user, event_type="subscription_change_scheduled")
    current = _current(user)
    return event.details["from"], event.details["to"], current.tier.slug, current.scheduled_tier_id


def _checkout(url: str, user) -> tuple:
    target = urlsplit(url)
    query = parse_qs(target.query)
    assert query["client_reference_id"] == [str(user.pk)]
    assert query["prefilled_email"] == [user.email]
    started = AuditLog.objects.get(user=user, event_type=services.CHECKOUT_STARTED)
    return f"{target.scheme}://{target.netloc}{target.path}", started.details


def test_a_plan_change_from_the_page_and_through_the_flow_does_the_same(
    client, member, payments_on
):
    """No endpoint changes a plan (yet): the flow is called as one would call it."""
    other = _member("other@example.com")

    # An upgrade starts the provider's checkout, audited, and changes nothing yet.
    page = client.post(CHANGE, {"tier": "pro"})
    with transaction.atomic(), rls.user_context(other):
        change = services.plan_change(user_id=other.pk, email=other.email, tier_slug="pro")
    assert page.status_code == 302 and change.subscription_id is None
    assert _checkout(page["Location"], member) == _checkout(change.checkout_url, other)
    assert _current(member).tier.slug == _current(other).tier.slug == "free"

    # A downgrade is scheduled for the period's end, audited by the database.
    for user in (member, other):
        _on_tier(user, "team")
    client.post(CHANGE, {"tier": "pro"})
    with transaction.atomic(), rls.user_context(other):
        change = services.plan_change(user_id=other.pk, email=other.email, tier_slug="pro")
    assert change.checkout_url is None and change.subscription_id == _current(other).pk
    assert _scheduled(member) == _scheduled(other)
    assert _scheduled(other)[:3] == ("team", "pro", "team")
