from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from usage.models import AIModel, AIProvider, AIUsageDaily, AIUsageMonthly, AIUsageRequest
from witchcraft.platform.admin_columns import money_column
from witchcraft.platform.admin_mixins import ReadOnlyAdmin


@admin.register(AIProvider)
class AIProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_local", "is_active")
    list_filter = ("is_active", "is_local")
    search_fields = ("name", "slug")
    ordering = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "name",
        "provider",
        "context_window",
        money_column("input_price_per_million", "Input price per 1M"),
        money_column("output_price_per_million", "Output price per 1M"),
        money_column("cached_input_price_per_million", "Cached input price per 1M"),
        "is_active",
    )
    list_filter = ("provider", "is_active")
    search_fields = ("name", "display_name", "provider__name")
    list_select_related = ("provider",)
    ordering = ("provider__name", "name")


@admin.register(AIUsageRequest)
class AIUsageRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        money_column("cost", "Cost"),
        "price_used",
        "reservation_id",
        "latency_ms",
        "session_link",
    )
    list_filter = ("status", "provider", "model")
    search_fields = ("request_id", "user__email")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("user", "model")
    show_full_result_count = False

    @admin.display(description="Price used ($ per 1M in / cached in / out)")
    def price_used(self, obj):
        """The catalog's prices copied onto the row when it was recorded: what the server
        charged, whatever the catalog says today."""
        return (
            f"{obj.input_price_per_million.normalize():f} / "
            f"{obj.cached_input_price_per_million.normalize():f} / "
            f"{obj.output_price_per_million.normalize():f}"
        )

    @admin.display(description="Agent session")
    def session_link(self, obj):
        if obj.agent_session_id is None:
            return "-"
        url = reverse("admin:agents_agentsession_change", args=[obj.agent_session_id])
        return format_html('<a href="{}">#{}</a>', url, obj.agent_session_id)


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
        money_column("cost", "Cost"),
    )
    list_filter = ("provider", "model", "usage_date")
    search_fields = ("user__email",)
    date_hierarchy = "usage_date"
    ordering = ("-usage_date",)
    list_select_related = ("user", "provider", "model")
    show_full_result_count = False


@admin.register(AIUsageMonthly)
class AIUsageMonthlyAdmin(ReadOnlyAdmin):
    list_display = (
        "year",
        "month",
        "user",
        "request_count",
        "total_tokens",
        money_column("cost", "Cost"),
    )
    list_filter = ("year", "month")
    search_fields = ("user__email",)
    ordering = ("-year", "-month")
    list_select_related = ("user",)
    show_full_result_count = False
