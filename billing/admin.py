from django.contrib import admin

from billing.models import (
    PaymentHistory,
    SubscriptionTier,
    UsageAlert,
    UserQuota,
    UserSubscription,
)
from witchcraft.admin_mixins import ReadOnlyAdmin


@admin.register(SubscriptionTier)
class SubscriptionTierAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "monthly_price",
        "yearly_price",
        "monthly_token_limit",
        "monthly_cost_limit",
        "requests_per_minute",
        "is_public",
        "is_active",
        "sort_order",
    )
    list_filter = ("is_public", "is_active")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(UserSubscription)
class UserSubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "tier",
        "status",
        "billing_cycle",
        "current_period_end",
        "cancel_at_period_end",
    )
    list_filter = ("status", "tier", "billing_cycle")
    search_fields = ("user__email", "provider_subscription_id")
    list_select_related = ("user", "tier")
    raw_id_fields = ("user",)


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "tokens_used",
        "tokens_limit",
        "cost_used",
        "cost_limit",
        "usage_ratio",
        "period_end",
    )
    search_fields = ("user__email",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(PaymentHistory)
class PaymentHistoryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "amount", "currency", "status", "payment_provider")
    list_filter = ("status", "payment_provider", "currency")
    search_fields = ("user__email", "provider_payment_id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)


@admin.register(UsageAlert)
class UsageAlertAdmin(admin.ModelAdmin):
    list_display = (
        "triggered_at",
        "user",
        "alert_type",
        "metric",
        "value_at_trigger",
        "limit_at_trigger",
        "acknowledged_at",
        "resolved_at",
    )
    list_filter = ("alert_type", "metric")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    raw_id_fields = ("user", "acknowledged_by")
