"""The payment provider's webhook: signatures, idempotency, order, and what each event does."""

import json
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.db import connection

from accounts.models import AuditLog
from accounts.services import user_register
from billing import webhooks
from billing.models import (
    BillingWebhookEvent,
    PaymentHistory,
    SubscriptionTier,
    UsageAlert,
    UserQuota,
    UserSubscription,
)
from billing.services import quota_consume

pytestmark = pytest.mark.django_db

URL = "/billing/webhooks/stripe/"
SECRET = "whsec_test_secret"


@pytest.fixture(autouse=True)
def _provider(settings):
    settings.BILLING_PROVIDER = "stripe"
    settings.BILLING_WEBHOOK_SECRET = SECRET
    settings.BILLING_CHECKOUT_LINKS = {"pro": "https://checkout.example/pro"}


@pytest.fixture
def user():
    from accounts.models import User

    return User.objects.get(
        pk=user_register(email="payer@example.com", password="x" * 6 + "Q7!a9z")
    )


def _event(event_type: str, obj: dict, *, event_id: str | None = None, created=None) -> dict:
    return {
        "id": event_id or f"evt_{time.monotonic_ns()}",
        "type": event_type,
        "created": created or int(time.time()),
        "data": {"object": obj},
    }


def _post(client, event: dict, *, secret: str = SECRET, timestamp: int | None = None, body=None):
    payload = body if body is not None else json.dumps(event).encode()
    header = webhooks.signature_header(
        payload=payload, secret=secret, timestamp=timestamp or int(time.time())
    )
    return client.post(
        URL, data=payload, content_type="application/json", headers={"Stripe-Signature": header}
    )


def _checkout(user, *, tier="pro", sub="sub_1", invoice="in_1", amount=2000, **extra) -> dict:
    return _event(
        "checkout.session.completed",
        {
            "id": "cs_1",
            "client_reference_id": str(user.pk),
            "customer": "cus_1",
            "subscription": sub,
            "invoice": invoice,
            "amount_total": amount,
            "currency": "usd",
            "payment_status": "paid",
            "metadata": {"tier": tier},
            **extra,
        },
        **({"event_id": extra.pop("event_id")} if "event_id" in extra else {}),
    )


def _invoice(event_type, *, sub="sub_1", invoice="in_2", amount=2000, start=None, end=None, **kw):
    obj = {
        "id": invoice,
        "subscription": sub,
        "customer": "cus_1",
        "amount_paid": amount,
        "amount_due": amount,
        "currency": "usd",
        "attempt_count": 1,
    }
    if start and end:
        obj["lines"] = {"data": [{"period": {"start": start, "end": end}}]}
    return _event(event_type, obj, **kw)


def _counts():
    return (
        BillingWebhookEvent.objects.count(),
        PaymentHistory.objects.count(),
        UserSubscription.objects.count(),
        AuditLog.objects.count(),
    )


def _current(user) -> UserSubscription:
    return UserSubscription.objects.select_related("tier").get(
        user=user, status__in=["trialing", "active", "past_due"]
    )


# --- checkout: the upgrade ------------------------------------------------------------------


def test_checkout_upgrades_at_once_and_raises_the_limits_in_the_current_period(client, user):
    quota_consume(user_id=user.pk, tokens=40_000, cost=Decimal("0.10"))
    before = UserQuota.objects.get(user=user)
    pro = SubscriptionTier.objects.get(slug="pro")

    response = _post(client, _checkout(user))

    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "applied"}
    current = _current(user)
    assert current.tier.slug == "pro"
    assert (current.payment_provider, current.provider_subscription_id) == ("stripe", "sub_1")
    quota = UserQuota.objects.get(user=user)
    assert quota.tokens_limit == pro.monthly_token_limit > before.tokens_limit
    assert quota.cost_limit == pro.monthly_cost_limit
    assert (quota.tokens_used, quota.period_start) == (before.tokens_used, before.period_start)
    payment = PaymentHistory.objects.get(user=user)
    assert (payment.amount, payment.currency, payment.status) == (
        Decimal("20.00"),
        "USD",
        "succeeded",
    )
    assert payment.provider_payment_id == "in_1"
    assert AuditLog.objects.filter(user=user, event_type="subscription_started").exists()
    assert UserSubscription.objects.get(user=user, tier__slug="free").status == "canceled"


def test_an_upgrade_resolves_the_alerts_the_new_limits_no_longer_justify(client, user):
    free = SubscriptionTier.objects.get(slug="free")
    quota_consume(user_id=user.pk, tokens=int(free.monthly_token_limit * 0.85), cost=Decimal(0))
    alert = UsageAlert.objects.get(user=user, alert_type="warning", metric="tokens")

    _post(client, _checkout(user))

    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_replayed_event_changes_nothing(client, user):
    event = _checkout(user)
    assert _post(client, event).json()["outcome"] == "applied"
    counts = _counts()

    response = _post(client, event)

    assert response.status_code == 200
    assert response.json()["outcome"] == "duplicate"
    assert _counts() == counts


def test_a_bad_signature_is_refused_and_writes_nothing(client, user, caplog):
    counts = _counts()
    response = _post(client, _checkout(user), secret="whsec_wrong")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_signature",
        "message": webhooks.BAD_SIGNATURE,
    }
    assert _counts() == counts
    assert "refused: bad_signature" in caplog.text


def test_a_missing_signature_is_refused(client, user):
    response = client.post(URL, data=json.dumps(_checkout(user)), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == webhooks.NO_SIGNATURE


@pytest.fixture
def frozen_clock(monkeypatch):
    """The verifier's clock stopped at one instant: a window's edge is tested exactly, however
    long the request takes."""
    instant = int(time.time())
    monkeypatch.setattr(webhooks, "clock", lambda: float(instant))
    return instant


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused(client, user, skew, frozen_clock):
    counts = _counts()
    response = _post(client, _checkout(user), timestamp=frozen_clock + skew)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "stale_signature"
    assert _counts() == counts


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_timestamp_at_the_edge_of_five_minutes_is_accepted(client, user, skew, frozen_clock):
    response = _post(client, _checkout(user), timestamp=frozen_clock + skew)
    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"


def test_a_signed_body_that_is_not_an_event_is_refused(client):
    response = _post(client, {}, body=b'{"id": 1}')
    assert response.status_code == 400
    assert response.json()["error"]["message"] == webhooks.NOT_JSON


def test_an_unknown_event_type_is_ignored_and_writes_nothing(client, user):
    counts = _counts()
    response = _post(client, _event("customer.created", {"id": "cus_9"}))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored: event type not handled"
    assert _counts() == counts


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ({"client_reference_id": "999999999"}, "ignored: unknown user"),
        ({"client_reference_id": "x'; drop table users"}, "ignored: no user reference"),
        ({"metadata": {"tier": "platinum"}}, "ignored: unknown tier"),
        ({"subscription": None}, "ignored: not a subscription checkout"),
        ({"payment_status": "unpaid"}, "ignored: not paid"),
        ({"currency": "dollars"}, "ignored: not a currency code"),
    ],
)
def test_a_checkout_naming_nothing_of_ours_is_ignored(client, user, change, outcome):
    event = _checkout(user)
    event["data"]["object"].update(change)
    counts = _counts()
    response = _post(client, event)
    assert response.json()["outcome"] == outcome
    assert _counts() == counts


def test_an_unknown_or_unconfigured_provider_is_404(client, user, settings):
    response = client.post("/billing/webhooks/paypal/", data="{}", content_type="application/json")
    assert response.status_code == 404
    settings.BILLING_WEBHOOK_SECRET = ""
    assert _post(client, _checkout(user)).status_code == 404


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405


# --- invoices and order --------------------------------------------------------------------


def test_an_invoice_before_its_checkout_is_retried_then_applied_once(client, user):
    now = int(time.time())
    paid = _invoice("invoice.paid", invoice="in_1", start=now, end=now + 30 * 86400)
    counts = _counts()

    early = _post(client, paid)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "retry"
    assert _counts() == counts

    assert _post(client, _checkout(user, invoice="in_1")).json()["outcome"] == "applied"
    retried = _post(client, paid)
    assert retried.json()["outcome"] == "applied"
    # The checkout recorded the first invoice's payment: its invoice.paid adds no second row.
    assert PaymentHistory.objects.filter(user=user).count() == 1
    assert _current(user).current_period_end.timestamp() == now + 30 * 86400


def test_a_failed_payment_makes_the_subscription_past_due_and_a_payment_restores_it(client, user):
    _post(client, _checkout(user))
    now = int(time.time())
    failed = _invoice("invoice.payment_failed", invoice="in_2", created=now + 10)
    assert _post(client, failed).json()["outcome"] == "applied"
    current = _current(user)
    assert current.status == "past_due"
    assert current.tier.slug == "pro"  # the grace keeps the plan's limits
    assert PaymentHistory.objects.get(provider_payment_id="in_2#failed-1").status == "failed"
    assert AuditLog.objects.filter(user=user, event_type="payment_failed").exists()

    paid = _invoice(
        "invoice.paid", invoice="in_2", start=now, end=now + 31 * 86400, created=now + 20
    )
    assert _post(client, paid).json()["outcome"] == "applied"
    current = _current(user)
    assert current.status == "active"
    assert current.current_period_end.timestamp() == now + 31 * 86400
    assert AuditLog.objects.filter(user=user, event_type="subscription_reactivated").exists()


def test_an_older_failure_arriving_after_a_newer_payment_does_not_move_it_back(client, user):
    _post(client, _checkout(user))
    now = int(time.time())
    _post(client, _invoice("invoice.paid", invoice="in_3", created=now + 3600))
    late_failure = _invoice("invoice.payment_failed", invoice="in_2", created=now + 60)

    assert _post(client, late_failure).json()["outcome"] == "applied"

    assert _current(user).status == "active"
    assert PaymentHistory.objects.filter(provider_payment_id="in_2#failed-1").exists()
    row = BillingWebhookEvent.objects.get(event_type="invoice.payment_failed")
    assert row.outcome == "older than the last event applied"


def test_past_due_beyond_the_grace_is_expired_to_free_by_monthly_maintenance(client, user):
    from django.core.management import call_command

    _post(client, _checkout(user))
    _post(client, _invoice("invoice.payment_failed", created=int(time.time()) + 10))
    with connection.cursor() as cursor:  # the owner makes the period end 8 days ago
        cursor.execute(
            "UPDATE user_subscriptions SET current_period_start = now() - interval '40 days',"
            " current_period_end = now() - interval '8 days' WHERE user_id = %s"
            " AND status = 'past_due'",
            [user.pk],
        )
    call_command("monthly_maintenance", stdout=StringIO())

    assert _current(user).tier.slug == "free"
    assert UserSubscription.objects.get(user=user, tier__slug="pro").status == "expired"
    free = SubscriptionTier.objects.get(slug="free")
    assert UserQuota.objects.get(user=user).tokens_limit == free.monthly_token_limit


def test_a_deleted_subscription_moves_the_user_to_free_now(client, user):
    _post(client, _checkout(user))
    deleted = _event("customer.subscription.deleted", {"id": "sub_1", "customer": "cus_1"})

    assert _post(client, deleted).json()["outcome"] == "applied"

    assert _current(user).tier.slug == "free"
    pro = UserSubscription.objects.get(user=user, tier__slug="pro")
    assert pro.status == "canceled"
    free = SubscriptionTier.objects.get(slug="free")
    assert UserQuota.objects.get(user=user).tokens_limit == free.monthly_token_limit
    assert AuditLog.objects.filter(user=user, event_type="subscription_ended").exists()
    # Deleting it again (a new event id) finds it ended and changes nothing more.
    again = _event("customer.subscription.deleted", {"id": "sub_1"})
    subscriptions = UserSubscription.objects.count()
    assert _post(client, again).json()["outcome"] == "applied"
    assert UserSubscription.objects.count() == subscriptions


def test_the_runtime_role_cannot_apply_events_outside_the_service_context(user):
    from django.db import DatabaseError, transaction

    from witchcraft.platform import rls

    with (
        pytest.raises(DatabaseError, match="only the service context"),
        transaction.atomic(),
        rls.user_context(user),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT * FROM apply_billing_event('stripe', 'evt_x', 'invoice.paid', now(),"
            " '{}'::jsonb)"
        )
