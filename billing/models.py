"""Billing: plans, the user's subscription, quotas, payments and quota alerts."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Cast, Greatest, Now, NullIf

from witchcraft.platform.constraints import json_object, non_negative, one_of
from witchcraft.platform.money import money_field

CURRENCY_CODE = Q(currency__regex=r"^[A-Z]{3}$")


class SubscriptionTier(models.Model):
    """A plan: free, pro, team, enterprise."""

    id = models.AutoField(primary_key=True)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    monthly_price = money_field()
    yearly_price = money_field()
    currency = models.CharField(max_length=3, default="USD")
    monthly_token_limit = models.BigIntegerField()
    monthly_cost_limit = money_field()
    requests_per_minute = models.IntegerField()
    features = models.JSONField(default=dict, blank=True)
    is_public = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "subscription_tiers"
        ordering = ["sort_order", "monthly_price"]
        constraints = [
            *non_negative(
                "subscription_tiers",
                "monthly_price",
                "yearly_price",
                "monthly_token_limit",
                "monthly_cost_limit",
                "requests_per_minute",
            ),
            models.CheckConstraint(condition=CURRENCY_CODE, name="subscription_tiers_currency"),
            json_object("subscription_tiers", "features"),
        ]

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    EXPIRED = "expired"


# A subscription in one of these states is the user's current one (at most one).
CURRENT_STATUSES = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
)


class BillingCycle(models.TextChoices):
    MONTHLY = "monthly"
    YEARLY = "yearly"


class UserSubscription(models.Model):
    """A user's plan over time; the row in a current state is their current plan."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by user_subscriptions_user
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="subscriptions",
        db_index=False,
    )
    tier = models.ForeignKey(SubscriptionTier, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    billing_cycle = models.CharField(
        max_length=8, choices=BillingCycle.choices, default=BillingCycle.MONTHLY
    )
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    # With cancel_at_period_end: the tier the user moves to when the period ends (a downgrade);
    # NULL means the free tier (a cancellation).
    scheduled_tier = models.ForeignKey(
        SubscriptionTier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # indexed by user_subscriptions_scheduled
    )
    canceled_at = models.DateTimeField(null=True, blank=True)
    payment_provider = models.CharField(max_length=32, blank=True, default="")
    provider_customer_id = models.CharField(max_length=255, blank=True, default="")
    provider_subscription_id = models.CharField(max_length=255, blank=True, default="")
    # When the provider created the last event that moved this subscription: an older event
    # arriving late (webhooks are not ordered) does not move it back.
    provider_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_subscriptions"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="user_subscriptions_user"),
            models.Index(
                fields=["scheduled_tier"],
                condition=Q(scheduled_tier__isnull=False),
                name="user_subscriptions_scheduled",
            ),
        ]
        constraints = [
            # users (1) -> (0..1) current subscription.
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status__in=CURRENT_STATUSES),
                name="user_subscriptions_one_current",
            ),
            one_of("user_subscriptions", "status", SubscriptionStatus.values),
            one_of("user_subscriptions", "billing_cycle", BillingCycle.values),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=F("current_period_start")),
                name="user_subscriptions_period_valid",
            ),
            models.UniqueConstraint(
                fields=["payment_provider", "provider_subscription_id"],
                condition=~Q(provider_subscription_id=""),
                name="user_subscriptions_provider_ref_key",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_tier__isnull=True) | Q(cancel_at_period_end=True),
                name="user_subscriptions_scheduled_needs_cancel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.tier_id} ({self.status})"


class UserQuota(models.Model):
    """The user's limits and consumption in the current period (exactly one per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="quota"
    )
    tokens_limit = models.BigIntegerField()
    tokens_used = models.BigIntegerField(default=0)
    cost_limit = money_field()
    cost_used = money_field()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The larger of the two fractions used (NULL when both limits are 0): what
    # "approaching the limit" is measured by, and what its index is built on.
    usage_ratio = models.GeneratedField(
        expression=Greatest(
            Cast("tokens_used", models.DecimalField())
            / NullIf(Cast("tokens_limit", models.DecimalField()), Value(Decimal(0))),
            F("cost_used") / NullIf(F("cost_limit"), Value(Decimal(0))),
        ),
        output_field=models.DecimalField(),
        db_persist=True,
    )
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_quotas"
        indexes = [
            models.Index(
                F("usage_ratio").desc(),
                name="idx_quotas_approaching_limit",
                condition=Q(usage_ratio__gte=Decimal("0.8")),
            ),
            models.Index(fields=["period_end"], name="user_quotas_period_end"),
        ]
        constraints = [
            *non_negative("user_quotas", "tokens_limit", "tokens_used", "cost_limit", "cost_used"),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="user_quotas_period_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"quota of {self.user_id}"


class QuotaReservation(models.Model):
    """An estimate held against the user's quota before an AI call (``check_and_consume_quota``).

    The server's record of what was reserved: recording the call's usage names it and is charged
    the actual amount minus what this row held, once (``settled_at``); a reservation never
    settled gives its hold back when it expires (``released_at``). Written only by SQL functions
    (billing/sql/0007_quota_reservations.sql).
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by quota_reservations_user
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="quota_reservations",
        db_index=False,
    )
    tokens = models.BigIntegerField()
    cost = money_field()
    # The quota period the hold was added to: a hold of an earlier period is gone with that
    # period's counters, so settling or releasing it gives nothing back.
    period_start = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    # The usage record that settled it (a retry of that record is its duplicate).
    usage_id = models.BigIntegerField(null=True, blank=True)
    # NULL, not '', until settled: the settlement CHECK ties it to settled_at.
    request_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "quota_reservations"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="quota_reservations_user"),
            # Open holds by expiry: the lazy release per user and the worker's sweep.
            models.Index(
                fields=["user", "expires_at"],
                condition=Q(settled_at__isnull=True, released_at__isnull=True),
                name="quota_reservations_open",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(settled_at__isnull=True, released_at__isnull=True),
                name="quota_reservations_expiring",
            ),
        ]
        constraints = [
            *non_negative("quota_reservations", "tokens", "cost"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="quota_reservations_expiry"
            ),
            models.CheckConstraint(
                condition=Q(settled_at__isnull=True) | Q(released_at__isnull=True),
                name="quota_reservations_settled_or_released",
            ),
            models.CheckConstraint(
                condition=Q(settled_at__isnull=True, usage_id__isnull=True, request_id__isnull=True)
                | Q(settled_at__isnull=False, usage_id__isnull=False, request_id__isnull=False),
                name="quota_reservations_settlement",
            ),
        ]

    def __str__(self) -> str:
        return f"reservation {self.pk} of {self.user_id}"


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


class PaymentHistory(models.Model):
    """One payment event from the payment provider. Append-only."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by payment_history_user
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
    )
    subscription = models.ForeignKey(
        UserSubscription, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    amount = money_field()
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    description = models.CharField(max_length=300, blank=True, default="")
    payment_provider = models.CharField(max_length=32)
    provider_payment_id = models.CharField(max_length=255)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "payment_history"
        indexes = [models.Index(fields=["user", "-created_at"], name="payment_history_user")]
        constraints = [
            # A constraint rather than unique=True: no varchar_pattern_ops twin index.
            models.UniqueConstraint(
                fields=["provider_payment_id"], name="payment_history_provider_payment_id_key"
            ),
            *non_negative("payment_history", "amount"),
            one_of("payment_history", "status", PaymentStatus.values),
            models.CheckConstraint(condition=CURRENCY_CODE, name="payment_history_currency"),
            models.CheckConstraint(
                condition=Q(period_end__isnull=True)
                | Q(period_start__isnull=True)
                | Q(period_end__gt=F("period_start")),
                name="payment_history_period_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.status})"


class AlertType(models.TextChoices):
    WARNING = "warning"  # 80 % of a limit
    EXCEEDED = "exceeded"  # 100 %


class AlertMetric(models.TextChoices):
    TOKENS = "tokens"
    COST = "cost"


ALERT_THRESHOLDS = {AlertType.WARNING: 80, AlertType.EXCEEDED: 100}


class UsageAlert(models.Model):
    """A quota alert; fires once per user, type, metric and period."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by usage_alerts_user
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="usage_alerts",
        db_index=False,
    )
    alert_type = models.CharField(max_length=16, choices=AlertType.choices)
    metric = models.CharField(max_length=16, choices=AlertMetric.choices)
    threshold_percent = models.SmallIntegerField()
    period_start = models.DateTimeField()
    value_at_trigger = models.DecimalField(max_digits=20, decimal_places=6)
    limit_at_trigger = models.DecimalField(max_digits=20, decimal_places=6)
    triggered_at = models.DateTimeField(db_default=Now())
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "usage_alerts"
        indexes = [
            models.Index(fields=["user", "-triggered_at"], name="usage_alerts_user"),
            models.Index(
                fields=["-triggered_at"],
                condition=Q(resolved_at__isnull=True),
                name="usage_alerts_open",
            ),
            # Alerts whose mail has not gone out yet (billing/alerts.py).
            models.Index(
                fields=["triggered_at"],
                condition=Q(notified_at__isnull=True, resolved_at__isnull=True),
                name="usage_alerts_unnotified",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "alert_type", "metric", "period_start"], name="usage_alerts_once"
            ),
            one_of("usage_alerts", "alert_type", AlertType.values),
            one_of("usage_alerts", "metric", AlertMetric.values),
            models.CheckConstraint(
                condition=Q(alert_type=AlertType.WARNING, threshold_percent=80)
                | Q(alert_type=AlertType.EXCEEDED, threshold_percent=100),
                name="usage_alerts_threshold_matches_type",
            ),
            *non_negative("usage_alerts", "value_at_trigger", "limit_at_trigger"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_type} {self.metric} for {self.user_id}"


class BillingWebhookEvent(models.Model):
    """A payment provider's event that was applied: the key of webhook idempotency.

    Written only by ``apply_billing_event`` (a refused, ignored or replayed event writes
    nothing). Holds ids and the outcome, never the payload (it carries personal data).
    """

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    event_created_at = models.DateTimeField()
    user = models.ForeignKey(  # indexed by billing_webhooks_user
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    subscription = models.ForeignKey(
        UserSubscription, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=300, blank=True, default="")
    received_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "billing_webhook_events"
        indexes = [
            models.Index(fields=["user", "-received_at"], name="billing_webhooks_user"),
            models.Index(F("received_at").desc(), name="billing_webhooks_received"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="billing_webhook_events_once"
            ),
            models.CheckConstraint(
                condition=~Q(event_id="") & ~Q(provider=""),
                name="billing_webhook_events_ids_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"
