"""Quotas: the user's limits and use this period, the reservations held against them, and
the alerts they raise at 80 % and 100 %."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Cast, Greatest, Now, NullIf

from witchcraft.platform.constraints import non_negative, one_of
from witchcraft.platform.money import money_field


class UserQuota(models.Model):
    """The user's limits and consumption in the current period (exactly one per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="quota"
    )
    tokens_limit = models.BigIntegerField()
    tokens_used = models.BigIntegerField(default=0)
    cost_limit = money_field()
    cost_used = money_field()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The larger of the two fractions used (NULL when both limits are 0): what
    # "approaching the limit" is measured by, and what its index is built on.
    usage_ratio = models.GeneratedField(
        expression=Greatest(
            Cast("tokens_used", models.DecimalField())
            / NullIf(Cast("tokens_limit", models.DecimalField()), Value(Decimal(0))),
            F("cost_used") / NullIf(F("cost_limit"), Value(Decimal(0))),
        ),
        output_field=models.DecimalField(),
        db_persist=True,
    )
    # A temporary raise by staff (raise_quota_limit, billing/sql/functions): until raised_until
    # the quota functions use the larger of the plan's limit and the raised one; from then on
    # the plan's again, with no job to run (one comparison with now()). NULL: not raised.
    raised_tokens_limit = models.BigIntegerField(null=True, blank=True)
    raised_cost_limit = money_field(null=True, blank=True, default=None)
    raised_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_quotas"
        indexes = [
            models.Index(
                F("usage_ratio").desc(),
                name="idx_quotas_approaching_limit",
                condition=Q(usage_ratio__gte=Decimal("0.8")),
            ),
            models.Index(fields=["period_end"], name="user_quotas_period_end"),
        ]
        constraints = [
            *non_negative("user_quotas", "tokens_limit", "tokens_used", "cost_limit", "cost_used"),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="user_quotas_period_valid"
            ),
            *non_negative("user_quotas", "raised_tokens_limit", "raised_cost_limit"),
            models.CheckConstraint(
                condition=Q(raised_until__isnull=True)
                | Q(raised_tokens_limit__isnull=False)
                | Q(raised_cost_limit__isnull=False),
                name="user_quotas_raise_names_a_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"quota of {self.user_id}"


class QuotaLimitRaise(models.Model):
    """One temporary limit raise by staff: who, when, the effective limits before and after,
    and until when. Append-only; written only by ``raise_quota_limit`` (which also stores the
    raise on the quota row, where the quota functions read it)."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by quota_limit_raises_user
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="quota_limit_raises",
        db_index=False,
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now())
    tokens_limit_from = models.BigIntegerField()
    tokens_limit_to = models.BigIntegerField(null=True, blank=True)
    cost_limit_from = money_field()
    cost_limit_to = money_field(null=True, blank=True, default=None)
    raised_until = models.DateTimeField()

    class Meta:
        db_table = "quota_limit_raises"
        indexes = [models.Index(fields=["user", "-created_at"], name="quota_limit_raises_user")]
        constraints = [
            *non_negative(
                "quota_limit_raises",
                "tokens_limit_from",
                "tokens_limit_to",
                "cost_limit_from",
                "cost_limit_to",
            ),
            models.CheckConstraint(
                condition=Q(raised_until__gt=F("created_at")), name="quota_limit_raises_until"
            ),
            models.CheckConstraint(
                condition=Q(tokens_limit_to__isnull=False) | Q(cost_limit_to__isnull=False),
                name="quota_limit_raises_names_a_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"raise {self.pk} of {self.user_id}"


class QuotaReservation(models.Model):
    """An estimate held against the user's quota before an AI call (``check_and_consume_quota``).

    The server's record of what was reserved: recording the call's usage names it and is charged
    the actual amount minus what this row held, once (``settled_at``); a reservation never
    settled gives its hold back when it expires (``released_at``). Written only by SQL functions
    (billing/sql/0007_quota_reservations.sql).
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by quota_reservations_user
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="quota_reservations",
        db_index=False,
    )
    tokens = models.BigIntegerField()
    cost = money_field()
    # The quota period the hold was added to: a hold of an earlier period is gone with that
    # period's counters, so settling or releasing it gives nothing back.
    period_start = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    # The usage record that settled it (a retry of that record is its duplicate).
    usage_id = models.BigIntegerField(null=True, blank=True)
    # NULL, not '', until settled: the settlement CHECK ties it to settled_at.
    request_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "quota_reservations"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="quota_reservations_user"),
            # Open holds by expiry: the lazy release per user and the worker's sweep.
            models.Index(
                fields=["user", "expires_at"],
                condition=Q(settled_at__isnull=True, released_at__isnull=True),
                name="quota_reservations_open",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(settled_at__isnull=True, released_at__isnull=True),
                name="quota_reservations_expiring",
            ),
        ]
        constraints = [
            *non_negative("quota_reservations", "tokens", "cost"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="quota_reservations_expiry"
            ),
            models.CheckConstraint(
                condition=Q(settled_at__isnull=True) | Q(released_at__isnull=True),
                name="quota_reservations_settled_or_released",
            ),
            models.CheckConstraint(
                condition=Q(settled_at__isnull=True, usage_id__isnull=True, request_id__isnull=True)
                | Q(settled_at__isnull=False, usage_id__isnull=False, request_id__isnull=False),
                name="quota_reservations_settlement",
            ),
        ]

    def __str__(self) -> str:
        return f"reservation {self.pk} of {self.user_id}"


class AlertType(models.TextChoices):
    WARNING = "warning"  # 80 % of a limit
    EXCEEDED = "exceeded"  # 100 %


class AlertMetric(models.TextChoices):
    TOKENS = "tokens"
    COST = "cost"


ALERT_THRESHOLDS = {AlertType.WARNING: 80, AlertType.EXCEEDED: 100}


class UsageAlert(models.Model):
    """A quota alert; fires once per user, type, metric and period."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(  # indexed by usage_alerts_user
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="usage_alerts",
        db_index=False,
    )
    alert_type = models.CharField(max_length=16, choices=AlertType.choices)
    metric = models.CharField(max_length=16, choices=AlertMetric.choices)
    threshold_percent = models.SmallIntegerField()
    period_start = models.DateTimeField()
    value_at_trigger = models.DecimalField(max_digits=20, decimal_places=6)
    limit_at_trigger = models.DecimalField(max_digits=20, decimal_places=6)
    triggered_at = models.DateTimeField(db_default=Now())
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "usage_alerts"
        indexes = [
            models.Index(fields=["user", "-triggered_at"], name="usage_alerts_user"),
            models.Index(
                fields=["-triggered_at"],
                condition=Q(resolved_at__isnull=True),
                name="usage_alerts_open",
            ),
            # Alerts whose mail has not gone out yet (billing/alerts.py).
            models.Index(
                fields=["triggered_at"],
                condition=Q(notified_at__isnull=True, resolved_at__isnull=True),
                name="usage_alerts_unnotified",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "alert_type", "metric", "period_start"], name="usage_alerts_once"
            ),
            one_of("usage_alerts", "alert_type", AlertType.values),
            one_of("usage_alerts", "metric", AlertMetric.values),
            models.CheckConstraint(
                condition=Q(alert_type=AlertType.WARNING, threshold_percent=80)
                | Q(alert_type=AlertType.EXCEEDED, threshold_percent=100),
                name="usage_alerts_threshold_matches_type",
            ),
            *non_negative("usage_alerts", "value_at_trigger", "limit_at_trigger"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_type} {self.metric} for {self.user_id}"
