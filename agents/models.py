"""Agents: conversations with their messages, tool calls and feedback."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Now

from witchcraft.platform.constraints import json_object, non_negative, one_of
from witchcraft.platform.money import money_field


class AgentSession(models.Model):
    """A conversation with an agent, with running totals kept by the message flow."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by a composite index starting with user
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_sessions",
        db_index=False,
    )
    # Database defaults (not Python ones) so that the runtime role, which may insert only the
    # descriptive columns, can create a session through the ORM: Django leaves them out.
    title = models.CharField(max_length=200, blank=True, db_default="")
    agent_name = models.CharField(max_length=100, db_default="assistant")
    model = models.ForeignKey(
        "usage.AIModel", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    is_active = models.BooleanField(db_default=True)
    started_at = models.DateTimeField(db_default=Now())
    last_activity_at = models.DateTimeField(db_default=Now())
    ended_at = models.DateTimeField(null=True, blank=True)
    message_count = models.IntegerField(db_default=0)
    tool_call_count = models.IntegerField(db_default=0)
    input_tokens = models.BigIntegerField(db_default=0)
    output_tokens = models.BigIntegerField(db_default=0)
    total_tokens = models.BigIntegerField(db_default=0)
    total_cost = money_field(default=models.NOT_PROVIDED, db_default=Decimal(0))
    metadata = models.JSONField(db_default=Value({}, models.JSONField()), blank=True)

    class Meta:
        db_table = "agent_sessions"
        indexes = [
            # A user's active sessions, most recent activity first.
            models.Index(
                fields=["user", "-last_activity_at"],
                name="idx_agent_sessions_user_active",
                condition=Q(is_active=True),
            ),
            models.Index(fields=["user", "-started_at"], name="agent_sessions_user_started"),
            # The staff list of every session, newest activity first (keyset pages).
            models.Index(fields=["-last_activity_at", "-id"], name="agent_sessions_activity"),
        ]
        constraints = [
            *non_negative(
                "agent_sessions",
                "message_count",
                "tool_call_count",
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "total_cost",
            ),
            models.CheckConstraint(
                condition=Q(last_activity_at__gte=F("started_at")),
                name="agent_sessions_activity_after_start",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="agent_sessions_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(ended_at__isnull=True),
                name="agent_sessions_active_not_ended",
            ),
            json_object("agent_sessions", "metadata"),
        ]

    def __str__(self) -> str:
        return self.title or f"session {self.pk}"


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class AgentMessage(models.Model):
    """One message of a session, numbered from 1 in the order it was said."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(  # indexed by the unique (session, position)
        AgentSession, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # Kept on every user-owned row: row-level security and a later shard key both need it.
    user = models.ForeignKey(  # indexed by a composite index starting with user
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_messages",
        db_index=False,
    )
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField()
    position = models.IntegerField()
    input_tokens = models.IntegerField(default=0)
    output_tokens = models.IntegerField(default=0)
    model = models.ForeignKey(
        "usage.AIModel", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    latency_ms = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "agent_messages"
        ordering = ["session", "position"]
        indexes = [models.Index(fields=["user", "-created_at"], name="agent_messages_user_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "position"], name="agent_messages_session_position_key"
            ),
            one_of("agent_messages", "role", MessageRole.values),
            models.CheckConstraint(
                condition=Q(position__gte=1), name="agent_messages_position_positive"
            ),
            *non_negative("agent_messages", "input_tokens", "output_tokens", "latency_ms"),
            json_object("agent_messages", "metadata"),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.position}"


class ToolCallStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"


class AgentToolCall(models.Model):
    """A tool the agent ran: its arguments, result and timing."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(  # indexed by agent_tool_calls_session
        AgentSession, on_delete=models.CASCADE, related_name="tool_calls", db_index=False
    )
    message = models.ForeignKey(
        AgentMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="tool_calls"
    )
    user = models.ForeignKey(  # indexed by a composite index starting with user
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_tool_calls",
        db_index=False,
    )
    tool_name = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ToolCallStatus.choices, default=ToolCallStatus.PENDING
    )
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "agent_tool_calls"
        indexes = [
            models.Index(fields=["session", "started_at"], name="agent_tool_calls_session"),
            models.Index(fields=["user", "-started_at"], name="agent_tool_calls_user_started"),
        ]
        constraints = [
            one_of("agent_tool_calls", "status", ToolCallStatus.values),
            json_object("agent_tool_calls", "arguments"),
            *non_negative("agent_tool_calls", "duration_ms"),
            models.CheckConstraint(
                condition=Q(completed_at__isnull=True) | Q(completed_at__gte=F("started_at")),
                name="agent_tool_calls_completed_after_start",
            ),
            models.CheckConstraint(condition=~Q(tool_name=""), name="agent_tool_calls_tool_name"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"


class AgentFeedback(models.Model):
    """A user's rating (1-5; thumbs up is 5, down is 1) of a session or of one message."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="feedback")
    message = models.ForeignKey(
        AgentMessage, on_delete=models.CASCADE, null=True, blank=True, related_name="feedback"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_feedback"
    )
    rating = models.SmallIntegerField()
    comment = models.TextField(blank=True, default="")
    category = models.CharField(max_length=50, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "agent_feedback"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "message"], name="agent_feedback_user_message_key"
            ),
            models.UniqueConstraint(
                fields=["user", "session"],
                condition=Q(message__isnull=True),
                name="agent_feedback_user_session_key",
            ),
            models.CheckConstraint(
                condition=Q(rating__gte=1, rating__lte=5), name="agent_feedback_rating_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5"


class _SessionStatsColumns(models.Model):
    """The columns of ``agent_session_stats`` (see agents/sql/0001_agent_session_stats.sql)."""

    user_messages = models.IntegerField()
    assistant_messages = models.IntegerField()
    system_messages = models.IntegerField()
    tool_messages = models.IntegerField()
    tool_calls = models.IntegerField()
    tool_calls_succeeded = models.IntegerField()
    tool_success_rate = models.DecimalField(max_digits=5, decimal_places=4, null=True)
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    total_tokens = models.BigIntegerField()
    total_cost = money_field()
    duration_seconds = models.FloatField(null=True)
    avg_latency_ms = models.FloatField(null=True)
    feedback_count = models.IntegerField()
    avg_rating = models.DecimalField(max_digits=4, decimal_places=2, null=True)
    refreshed_at = models.DateTimeField()

    class Meta:
        abstract = True


class AgentSessionStats(_SessionStatsColumns):
    """Pre-computed per-session statistics: the materialized view ``agent_session_stats``.

    Created and refreshed by SQL; readable only by the owner role (row-level security does not
    apply to materialized views). Requests read :class:`VisibleAgentSessionStats` instead.
    """

    session = models.OneToOneField(
        AgentSession, on_delete=models.DO_NOTHING, primary_key=True, related_name="stats"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        managed = False
        db_table = "agent_session_stats"
        verbose_name_plural = "agent session stats (materialized view)"

    def __str__(self) -> str:
        return f"stats of session {self.session_id}"


class VisibleAgentSessionStats(_SessionStatsColumns):
    """The rows of ``agent_session_stats`` the caller may see: their own, or all for an admin.

    The view ``agent_session_stats_visible`` (security_invoker) reads them through the
    SECURITY DEFINER function ``get_agent_session_stats()``.
    """

    session = models.OneToOneField(
        AgentSession, on_delete=models.DO_NOTHING, primary_key=True, related_name="visible_stats"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        managed = False
        db_table = "agent_session_stats_visible"
        verbose_name_plural = "agent session stats"

    def __str__(self) -> str:
        return f"stats of session {self.session_id}"
