"""Payments and the payment provider's webhook events."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from billing.models.plans import CURRENCY_CODE, UserSubscription
from witchcraft.platform.constraints import non_negative, one_of
from witchcraft.platform.money import money_field


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
