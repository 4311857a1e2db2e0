from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.template.response import TemplateResponse

from accounts import audit
from billing import errors, selectors, services
from billing.forms import QuotaRaiseForm
from billing.models import (
    PaymentHistory,
    QuotaReservation,
    SubscriptionTier,
    UsageAlert,
    UserQuota,
    UserSubscription,
)
from witchcraft.platform.admin_columns import metric_column, money_column, percent_column
from witchcraft.platform.admin_mixins import ReadOnlyAdmin

# The runtime role cannot write quotas, subscriptions or payments: those screens are read-only
# and change through the actions below, which call the services (staff-only SQL functions).


@admin.register(SubscriptionTier)
class SubscriptionTierAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        money_column("monthly_price", "Monthly price", currency_field="currency"),
        money_column("yearly_price", "Yearly price", currency_field="currency"),
        "monthly_token_limit",
        money_column("monthly_cost_limit", "Monthly cost limit"),
        "requests_per_minute",
        "is_public",
        "is_active",
        "sort_order",
    )
    list_filter = ("is_public", "is_active")
    search_fields = ("name", "slug")
    ordering = ("sort_order", "monthly_price")
    prepopulated_fields = {"slug": ("name",)}


def _move_to_tier_action(slug: str, name: str):
    def move_to_tier(modeladmin, request, queryset):
        user_agent = audit.request_user_agent(request)
        changed = 0
        for user_id in set(queryset.values_list("user_id", flat=True)):
            before = selectors.subscription_current(user_id=user_id)
            try:
                new_id = services.subscription_change_tier(
                    user_id=user_id, tier_slug=slug, user_agent=user_agent
                )
            except errors.QuotaError as refused:
                modeladmin.message_user(request, refused.message, messages.ERROR)
                return
            changed += before is None or new_id != before.pk
        modeladmin.message_user(request, f"{changed} user(s) moved to {name}.", messages.SUCCESS)

    move_to_tier.__name__ = f"move_to_{slug}"
    return admin.action(description=f"Move to {name}")(move_to_tier)


@admin.register(UserSubscription)
class UserSubscriptionAdmin(ReadOnlyAdmin):
    list_display = (
        "user",
        "tier",
        "status",
        "billing_cycle",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "created_at",
    )
    list_filter = ("status", "tier", "billing_cycle", "cancel_at_period_end")
    search_fields = ("user__email", "provider_subscription_id", "provider_customer_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("user", "tier")

    def get_actions(self, request, action_location=admin.ActionLocation.CHANGE_LIST):
        """One "Move to <tier>" action per active tier (each call audited as tier_changed)."""
        actions = super().get_actions(request, action_location=action_location)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        for slug, name in SubscriptionTier.objects.filter(is_active=True).values_list(
            "slug", "name"
        ):
            action = self.get_action(_move_to_tier_action(slug, name), action_location)
            if action:
                actions[action.name] = action
        return actions


@admin.register(UserQuota)
class UserQuotaAdmin(ReadOnlyAdmin):
    list_display = (
        "user",
        "tokens_used",
        "tokens_limit",
        money_column("cost_used", "Cost used"),
        money_column("cost_limit", "Cost limit"),
        percent_column("usage_ratio", "Usage"),
        "period_start",
        "period_end",
        "updated_at",
    )
    list_filter = ("period_start",)
    search_fields = ("user__email",)
    date_hierarchy = "period_start"
    ordering = ("-usage_ratio",)
    list_select_related = ("user",)
    show_full_result_count = False
    actions = ("reset_selected", "raise_limit")

    @admin.action(description="Reset selected quotas")
    def reset_selected(self, request, queryset):
        user_agent = audit.request_user_agent(request)
        reset = 0
        for user_id in queryset.values_list("user_id", flat=True):
            try:
                reset += services.quota_reset(user_id=user_id, user_agent=user_agent)
            except errors.QuotaError as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
        self.message_user(request, f"{reset} quota(s) reset.", messages.SUCCESS)

    @admin.action(description="Raise limits of selected quotas until…", permissions=("raise",))
    def raise_limit(self, request, queryset):
        """A form (new token and / or cost limit, until when), then
        services.quota_raise_limit for each selected quota (audited by the database)."""
        quotas = list(queryset.select_related("user"))
        form = QuotaRaiseForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            for quota in quotas:
                try:
                    services.quota_raise_limit(
                        user_id=quota.user_id,
                        tokens_limit=data["tokens_limit"],
                        cost_limit=data["cost_limit"],
                        until=data["until"],
                    )
                except errors.QuotaError as refused:
                    form.add_error(None, f"{quota.user.email}: {refused.message}")
                    break
            else:
                self.message_user(request, f"{len(quotas)} quota(s) raised.", messages.SUCCESS)
                return None
        return TemplateResponse(
            request,
            "admin/billing/userquota/raise_limit.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Raise limits",
                "form": form,
                "quotas": quotas,
            },
        )

    def has_raise_permission(self, request):
        """The raise needs billing.change_userquota (raise_quota_limit checks it again); the
        quota's page itself stays read-only."""
        return request.user.has_perm("billing.change_userquota")


@admin.register(PaymentHistory)
class PaymentHistoryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        money_column("amount", "Amount", currency_field="currency"),
        "currency",
        "status",
        "payment_provider",
        "provider_payment_id",
    )
    list_filter = ("status", "payment_provider", "currency")
    search_fields = ("user__email", "provider_payment_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("user",)
    show_full_result_count = False


@admin.register(QuotaReservation)
class QuotaReservationAdmin(ReadOnlyAdmin):
    """What each POST /quota/consume held, and what became of it (settled by which request,
    or released when it expired)."""

    list_display = (
        "created_at",
        "user",
        "tokens",
        money_column("cost", "Cost"),
        "expires_at",
        "settled_at",
        "request_id",
        "released_at",
    )
    search_fields = ("user__email", "request_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("user",)
    show_full_result_count = False


ALERT_WRITABLE_FIELDS = ("acknowledged_at", "acknowledged_by")


@admin.register(UsageAlert)
class UsageAlertAdmin(admin.ModelAdmin):
    """Alerts are raised by the quota functions; staff only acknowledge them here."""

    list_display = (
        "triggered_at",
        "user",
        "alert_type",
        "metric",
        "threshold_percent",
        metric_column("value_at_trigger", "Value at trigger"),
        metric_column("limit_at_trigger", "Limit at trigger"),
        "acknowledged_at",
        "resolved_at",
    )
    list_filter = ("alert_type", "metric", "acknowledged_at", "resolved_at")
    search_fields = ("user__email",)
    date_hierarchy = "triggered_at"
    ordering = ("-triggered_at",)
    list_select_related = ("user",)
    raw_id_fields = ("user", "acknowledged_by")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [
            f.name
            for f in self.model._meta.concrete_fields
            if f.name not in ALERT_WRITABLE_FIELDS and f.name != "id"
        ]

    def save_model(self, request, obj, form, change):
        obj.save(update_fields=list(ALERT_WRITABLE_FIELDS))
