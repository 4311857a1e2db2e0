from django.contrib import admin

from agents.models import (
    AgentFeedback,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    VisibleAgentSessionStats,
)
from witchcraft.admin_mixins import ReadOnlyAdmin


@admin.register(AgentSession)
class AgentSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "user",
        "agent_name",
        "is_active",
        "last_activity_at",
        "message_count",
        "total_tokens",
        "total_cost",
    )
    list_filter = ("is_active", "agent_name")
    search_fields = ("title", "user__email")
    date_hierarchy = "started_at"
    list_select_related = ("user",)
    raw_id_fields = ("user", "model")


@admin.register(AgentMessage)
class AgentMessageAdmin(ReadOnlyAdmin):
    list_display = ("session", "position", "role", "user", "created_at", "output_tokens")
    list_filter = ("role",)
    search_fields = ("content", "user__email")
    list_select_related = ("session", "user")


@admin.register(AgentToolCall)
class AgentToolCallAdmin(ReadOnlyAdmin):
    list_display = ("tool_name", "status", "session", "user", "started_at", "duration_ms")
    list_filter = ("status", "tool_name")
    search_fields = ("tool_name", "user__email")
    list_select_related = ("session", "user")


@admin.register(AgentFeedback)
class AgentFeedbackAdmin(ReadOnlyAdmin):
    list_display = ("session", "message", "user", "rating", "category", "created_at")
    list_filter = ("rating", "category")
    search_fields = ("comment", "user__email")
    list_select_related = ("session", "user")


@admin.register(VisibleAgentSessionStats)
class AgentSessionStatsAdmin(ReadOnlyAdmin):
    list_display = (
        "session",
        "user",
        "user_messages",
        "assistant_messages",
        "tool_calls",
        "tool_success_rate",
        "total_cost",
        "avg_rating",
        "refreshed_at",
    )
    list_select_related = ("session", "user")
