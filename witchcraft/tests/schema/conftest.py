"""The rows the schema suite's bad rows clash with or point at."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import AccessToken, UserProfile
from agents.models import AgentFeedback
from billing.models import PaymentHistory, SubscriptionTier, UsageAlert, UserSubscription
from usage.models import AIUsageDaily, AIUsageMonthly, AIUsageRequestKey
from witchcraft.testing.factories import AgentMessageFactory, AgentSessionFactory, quota_for
from witchcraft.tests.schema.rows import DAY, LATER, PERIOD, T0, plain_user, sha256


@pytest.fixture
def world(catalog_model):
    """The rows the bad rows clash with or point at."""
    user = plain_user()
    other_user = plain_user()
    UserProfile.objects.create(user=other_user)
    session = AgentSessionFactory(user=user)
    message = AgentMessageFactory(session=session, role="user", position=1)
    AgentFeedback.objects.create(session=session, message=message, user=user, rating=5)
    AgentFeedback.objects.create(session=session, message=None, user=user, rating=4)
    tier = SubscriptionTier.objects.get(slug="pro")
    subscription = UserSubscription.objects.create(
        user=user,
        tier=tier,
        status="active",
        current_period_start=PERIOD,
        current_period_end=datetime(2026, 4, 1, tzinfo=UTC),
        payment_provider="stripe",
        provider_subscription_id="sub_1",
    )
    # An old subscription from before the payment provider kept references.
    UserSubscription.objects.create(
        user=user,
        tier=tier,
        status="canceled",
        current_period_start=datetime(2025, 1, 1, tzinfo=UTC),
        current_period_end=datetime(2025, 2, 1, tzinfo=UTC),
    )
    quota_for(user, "pro")
    PaymentHistory.objects.create(
        user=user,
        subscription=subscription,
        amount=Decimal("12.00"),
        status="succeeded",
        payment_provider="stripe",
        provider_payment_id="pi_existing",
    )
    UsageAlert.objects.create(
        user=user,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=PERIOD,
        value_at_trigger=800_000,
        limit_at_trigger=1_000_000,
    )
    AccessToken.objects.create(
        user=user,
        name="phone",
        token_hash=sha256("an existing token"),
        prefix="wc_0000",
        created_at=T0,
        expires_at=LATER,
    )
    counters = {"provider": catalog_model.provider, "model": catalog_model, "user": user}
    AIUsageDaily.objects.create(usage_date=DAY, **counters)
    AIUsageMonthly.objects.create(user=user, year=2026, month=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval('ai_usage_requests_id_seq'), nextval('ai_usage_requests_id_seq')"
        )
        keyed_usage_id, free_usage_id = cursor.fetchone()
    AIUsageRequestKey.objects.create(
        usage_id=keyed_usage_id, user=user, request_id="req-keyed", created_at=T0
    )
    return {
        "user": user.id,
        "user_email": user.email,
        "other_user": other_user.id,
        "provider": catalog_model.provider_id,
        "provider_slug": catalog_model.provider.slug,
        "model": catalog_model.id,
        "model_name": catalog_model.name,
        "session": session.id,
        "message": message.id,
        "tier": tier.id,
        "subscription": subscription.id,
        "keyed_usage_id": keyed_usage_id,
        "free_usage_id": free_usage_id,
    }
