from django.contrib import admin

from usage.models import AIModel, AIProvider, AIUsageDaily, AIUsageMonthly, AIUsageRequest
from witchcraft.admin_mixins import ReadOnlyAdmin


@admin.register(AIProvider)
class AIProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_local", "is_active")
    list_filter = ("is_active", "is_local")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "name",
        "provider",
        "context_window",
        "input_price_per_million",
        "output_price_per_million",
        "cached_input_price_per_million",
        "is_active",
    )
    list_filter = ("provider", "is_active")
    search_fields = ("name", "display_name")
    list_select_related = ("provider",)


@admin.register(AIUsageRequest)
class AIUsageRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "cost",
        "latency_ms",
    )
    list_filter = ("status", "provider")
    search_fields = ("request_id", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user", "model")
    show_full_result_count = False


@admin.register(AIUsageDaily)
class AIUsageDailyAdmin(ReadOnlyAdmin):
    list_display = (
        "usage_date",
        "user",
        "provider",
        "model",
        "request_count",
        "error_count",
        "total_tokens",
        "cost",
    )
    list_filter = ("provider",)
    search_fields = ("user__email",)
    date_hierarchy = "usage_date"
    list_select_related = ("user", "provider", "model")


@admin.register(AIUsageMonthly)
class AIUsageMonthlyAdmin(ReadOnlyAdmin):
    list_display = ("year", "month", "user", "request_count", "total_tokens", "cost")
    list_filter = ("year", "month")
    search_fields = ("user__email",)
    list_select_related = ("user",)
