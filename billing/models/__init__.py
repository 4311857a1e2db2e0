"""Billing's models: plans and subscriptions (plans.py), quotas, reservations and alerts
(quotas.py), payments and webhook events (payments.py). Imported from here by everyone."""

from billing.models.payments import (
    BillingWebhookEvent,
    PaymentHistory,
    PaymentStatus,
)
from billing.models.plans import (
    CURRENCY_CODE,
    CURRENT_STATUSES,
    BillingCycle,
    SubscriptionStatus,
    SubscriptionTier,
    UserSubscription,
)
from billing.models.quotas import (
    ALERT_THRESHOLDS,
    AlertMetric,
    AlertType,
    QuotaLimitRaise,
    QuotaReservation,
    UsageAlert,
    UserQuota,
)

__all__ = [
    "ALERT_THRESHOLDS",
    "CURRENCY_CODE",
    "CURRENT_STATUSES",
    "AlertMetric",
    "AlertType",
    "BillingCycle",
    "BillingWebhookEvent",
    "PaymentHistory",
    "PaymentStatus",
    "QuotaLimitRaise",
    "QuotaReservation",
    "SubscriptionStatus",
    "SubscriptionTier",
    "UsageAlert",
    "UserQuota",
    "UserSubscription",
]
