"""Plans and the user's subscription to one: tiers, statuses, billing cycles."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

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
