"""Usage: the AI catalog (providers, models) and the metering of every AI request."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from witchcraft.platform.constraints import non_negative
from witchcraft.platform.money import money_field

TOKEN_COUNTS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")


class AIProvider(models.Model):
    """A vendor (or local runtime) that serves models: OpenAI, Anthropic, Ollama, ..."""

    id = models.AutoField(primary_key=True)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    base_url = models.URLField(max_length=300, blank=True)
    is_local = models.BooleanField(default=False, help_text="runs on the user's machine")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ai_providers"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AIModel(models.Model):
    """A model of a provider, with its published prices per million tokens (US dollars)."""

    id = models.AutoField(primary_key=True)
    provider = models.ForeignKey(AIProvider, on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=100, help_text="the provider's model id")
    display_name = models.CharField(max_length=100)
    context_window = models.IntegerField()
    input_price_per_million = money_field()
    output_price_per_million = money_field()
    cached_input_price_per_million = money_field()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ai_models"
        ordering = ["provider__name", "display_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "name"], name="ai_models_provider_name_key"
            ),
            *non_negative(
                "ai_models",
                "context_window",
                "input_price_per_million",
                "output_price_per_million",
                "cached_input_price_per_million",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name


class UsageStatus(models.TextChoices):
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class AIUsageRequestKey(models.Model):
    """The unpartitioned home of the uniqueness rules of ``ai_usage_requests``.

    A unique index on a partitioned table must contain the partition key, so "one row per
    ``(user, request_id)``" and "at most one row per agent message" cannot live there. Every
    usage row has exactly one key row, enforced by foreign keys from the usage table (see
    ``usage/sql/0001_ai_usage_requests.sql``), so a retried ``request_id`` is refused whichever
    month it lands in. ``created_at`` is part of the match, so one key row admits one usage row.
    """

    usage_id = models.BigIntegerField(primary_key=True)
    # Indexed by the unique (user, request_id) constraint below.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    request_id = models.CharField(max_length=100)
    agent_message = models.OneToOneField(
        "agents.AgentMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "ai_usage_request_keys"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "request_id"], name="ai_usage_request_keys_user_request_key"
            ),
            # Targets of the composite foreign keys from ai_usage_requests.
            models.UniqueConstraint(
                fields=["user", "request_id", "usage_id", "created_at"],
                name="ai_usage_request_keys_fk_target",
            ),
            models.UniqueConstraint(
                fields=["usage_id", "agent_message"], name="ai_usage_request_keys_message_target"
            ),
            models.CheckConstraint(
                condition=~Q(request_id=""), name="ai_usage_request_keys_request_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return self.request_id


class AIUsageRequest(models.Model):
    """One AI request: tokens, cost (with the prices used), latency and outcome.

    The table is partitioned by month on ``created_at`` and created by SQL
    (``usage/sql/0001_ai_usage_requests.sql``); this model maps onto it.
    """

    # The table's primary key is (id, created_at), as partitioning requires; id alone is unique
    # too (each row matches exactly one ai_usage_request_keys row, whose primary key is the id),
    # so Django may treat it as the primary key.
    id = models.BigIntegerField(
        primary_key=True,
        db_default=models.Func(
            models.Value("ai_usage_requests_id_seq"),
            function="nextval",
            output_field=models.BigIntegerField(),
        ),
    )
    created_at = models.DateTimeField(db_default=Now())
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ai_usage_requests"
    )
    provider = models.ForeignKey(AIProvider, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="+")
    agent_session = models.ForeignKey(
        "agents.AgentSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    agent_message = models.ForeignKey(
        "agents.AgentMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The quota reservation this request settled (billing.QuotaReservation; no foreign key:
    # settled reservations are pruned after a week, the usage row stays).
    reservation_id = models.BigIntegerField(null=True, blank=True)
    # The API token (accounts.AccessToken) that sent it, set by the recording functions from
    # the bearer token, never from the client's body; NULL when no token sent it. No foreign
    # key: maintenance deletes old tokens, the usage row keeps the id.
    access_token_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=100)
    input_tokens = models.IntegerField(default=0)
    output_tokens = models.IntegerField(default=0)
    cached_input_tokens = models.IntegerField(default=0)
    reasoning_tokens = models.IntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = money_field()
    input_price_per_million = money_field()
    output_price_per_million = money_field()
    cached_input_price_per_million = money_field()
    latency_ms = models.IntegerField(null=True, blank=True)
    time_to_first_token_ms = models.IntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=UsageStatus.choices, default=UsageStatus.SUCCESS
    )
    error_code = models.CharField(max_length=100, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "ai_usage_requests"
        # Indexes and constraints are declared in the SQL file that creates the table.

    def __str__(self) -> str:
        return f"{self.request_id} ({self.total_tokens} tokens)"


class _UsageTotals(models.Model):
    """The counters both roll-ups keep."""

    request_count = models.IntegerField(default=0)
    success_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0, help_text="every outcome but success")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = money_field()
    latency_ms_sum = models.BigIntegerField(default=0, help_text="over requests with a latency")
    latency_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(db_default=Now())

    COUNTERS = (
        "request_count",
        "success_count",
        "error_count",
        *TOKEN_COUNTS,
        "total_tokens",
        "cost",
        "latency_ms_sum",
        "latency_count",
    )

    class Meta:
        abstract = True

    @classmethod
    def totals_constraints(cls, table: str) -> list[models.CheckConstraint]:
        return [
            *non_negative(table, *cls.COUNTERS),
            models.CheckConstraint(
                condition=Q(request_count=F("success_count") + F("error_count")),
                name=f"{table}_outcomes_add_up",
            ),
        ]


class AIUsageDaily(_UsageTotals):
    """Per user, UTC day, provider and model."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by ai_usage_daily_key (user first)
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="ai_usage_daily",
        db_index=False,
    )
    usage_date = models.DateField()
    provider = models.ForeignKey(AIProvider, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "ai_usage_daily"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "usage_date", "provider", "model"], name="ai_usage_daily_key"
            ),
            *_UsageTotals.totals_constraints("ai_usage_daily"),
        ]
        indexes = [
            # idx_ai_usage_provider_comparison (usage_date, provider_id) is created in
            # usage/sql/0001_ai_usage_requests.sql: its name exceeds Django's 30 characters.
            # Model popularity over a period.
            models.Index(
                fields=["usage_date", "model"],
                name="idx_model_popularity",
                include=["request_count", "total_tokens"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.usage_date}"


class AIUsageMonthly(_UsageTotals):
    """Per user per calendar month (UTC)."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by ai_usage_monthly_key (user first)
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="ai_usage_monthly",
        db_index=False,
    )
    year = models.SmallIntegerField()
    month = models.SmallIntegerField()

    class Meta:
        db_table = "ai_usage_monthly"
        constraints = [
            models.UniqueConstraint(fields=["user", "year", "month"], name="ai_usage_monthly_key"),
            models.CheckConstraint(
                condition=Q(month__gte=1, month__lte=12), name="ai_usage_monthly_month_valid"
            ),
            models.CheckConstraint(
                condition=Q(year__gte=2000, year__lte=9999), name="ai_usage_monthly_year_valid"
            ),
            *_UsageTotals.totals_constraints("ai_usage_monthly"),
        ]
        indexes = [
            # Cost analysis: the biggest spenders of a month.
            models.Index(
                fields=["year", "month", "-cost"],
                name="idx_ai_usage_monthly_cost",
                include=["user", "total_tokens", "request_count"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.year}-{self.month:02d}"


class AIUsageDailyTotal(_UsageTotals):
    """All users together per UTC day, provider and model, for the days before
    ``AIUsageTotalsState.covered_before`` (the staff dashboard's charts and tables, which would
    otherwise sum every user's ``ai_usage_daily`` rows: their time grew with the number of
    users). Written only by ``refresh_usage_daily_totals()`` (daily maintenance) and by
    ``record_ai_usage`` for a request placed in a covered day; see usage/sql/0006."""

    id = models.BigAutoField(primary_key=True)
    usage_date = models.DateField()
    provider = models.ForeignKey(AIProvider, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="+")
    # Every user's cost of a day: wider than one user's numeric(12,6).
    cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    request_count = models.BigIntegerField(default=0)
    success_count = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0, help_text="every outcome but success")
    latency_count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "ai_usage_daily_totals"
        constraints = [
            models.UniqueConstraint(
                fields=["usage_date", "provider", "model"], name="ai_usage_daily_totals_key"
            ),
            *_UsageTotals.totals_constraints("ai_usage_daily_totals"),
        ]

    def __str__(self) -> str:
        return f"{self.usage_date} {self.provider_id}/{self.model_id}"


class AIUsageTotalsState(models.Model):
    """One row: ``ai_usage_daily_totals`` holds every day before ``covered_before``; and
    ``today_date``'s rows as they were at ``today_as_of``, with ``today_users`` active users
    (``refresh_usage_today_totals()``, every minute by the job worker)."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    covered_before = models.DateField()
    refreshed_at = models.DateTimeField(db_default=Now())
    today_date = models.DateField(null=True, blank=True)
    today_as_of = models.DateTimeField(null=True, blank=True)
    today_users = models.IntegerField(db_default=0)

    class Meta:
        db_table = "ai_usage_totals_state"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="ai_usage_totals_state_one_row"),
        ]

    def __str__(self) -> str:
        return f"totals before {self.covered_before}"
