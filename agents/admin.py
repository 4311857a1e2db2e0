from django.contrib import admin, messages
from django.db import transaction

from accounts import audit
from agents import services
from agents.models import (
    AgentFeedback,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    VisibleAgentSessionStats,
)
from witchcraft.platform.admin_columns import money_column, percent_column
from witchcraft.platform.admin_mixins import ReadOnlyAdmin

# Audit event of a session ended from the admin.
SESSION_ENDED_BY_STAFF = "session_ended_by_staff"


@admin.register(AgentSession)
class AgentSessionAdmin(ReadOnlyAdmin):
    """A user's conversation: looked at here, ended by the action (through the service)."""

    list_display = (
        "id",
        "title",
        "user",
        "agent_name",
        "is_active",
        "last_activity_at",
        "message_count",
        "total_tokens",
        money_column("total_cost", "Total cost"),
    )
    list_filter = ("is_active", "agent_name", "model", "started_at")
    search_fields = ("title", "user__email")
    date_hierarchy = "started_at"
    ordering = ("-last_activity_at",)
    list_select_related = ("user",)
    raw_id_fields = ("user", "model")
    show_full_result_count = False
    actions = ("end_selected",)

    @admin.action(description="End selected sessions")
    def end_selected(self, request, queryset):
        user_agent = audit.request_user_agent(request)
        ended = 0
        for pk, user_id in queryset.filter(is_active=True).values_list("pk", "user_id"):
            with transaction.atomic():
                services.session_end(user_id=user_id, session_id=pk)
                audit.audit_event(
                    SESSION_ENDED_BY_STAFF,
                    user_id=user_id,
                    target_type="agent_session",
                    target_id=pk,
                    user_agent=user_agent,
                )
            ended += 1
        self.message_user(request, f"{ended} session(s) ended.", messages.SUCCESS)


@admin.register(AgentMessage)
class AgentMessageAdmin(ReadOnlyAdmin):
    list_display = ("session", "position", "role", "user", "created_at", "output_tokens")
    list_filter = ("role",)
    search_fields = ("content", "user__email")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("session", "user")
    show_full_result_count = False


@admin.register(AgentToolCall)
class AgentToolCallAdmin(ReadOnlyAdmin):
    list_display = ("tool_name", "status", "session", "user", "started_at", "duration_ms")
    list_filter = ("status", "tool_name")
    search_fields = ("tool_name", "user__email")
    date_hierarchy = "started_at"
    ordering = ("-started_at",)
    list_select_related = ("session", "user")
    show_full_result_count = False


@admin.register(AgentFeedback)
class AgentFeedbackAdmin(ReadOnlyAdmin):
    list_display = ("session", "message", "user", "rating", "category", "created_at")
    list_filter = ("rating", "category")
    search_fields = ("comment", "user__email")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("session", "user", "message")


@admin.register(VisibleAgentSessionStats)
class AgentSessionStatsAdmin(ReadOnlyAdmin):
    list_display = (
        "session",
        "user",
        "user_messages",
        "assistant_messages",
        "tool_calls",
        percent_column("tool_success_rate", "Tool success rate"),
        money_column("total_cost", "Total cost"),
        "avg_rating",
        "refreshed_at",
    )
    search_fields = ("user__email", "session__title")
    ordering = ("-session_id",)
    list_select_related = ("session", "user")
