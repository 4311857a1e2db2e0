"""Reads for usage pages, the API and charts: plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from usage.catalog import CatalogModel, catalog
from usage.models import AIModel, AIProvider, AIUsageDaily, AIUsageMonthly
from usage.services import refusals
from witchcraft.platform import replica


@dataclass(frozen=True)
class DayActivity:
    """One UTC day of a user's activity (``get_user_activity_summary``)."""

    day: date
    requests: int
    failures: int  # every outcome but success
    tokens: int
    cost: Decimal
    sessions_started: int
    messages: int


def activity_summary(*, user_id: int, days: int = 30) -> list[DayActivity]:
    """Return one DayActivity per UTC day of the ``days`` days ending today, oldest first.

    Idle days are included with zeros. Raises ``usage.services.UsageError``: ``invalid`` when
    ``days`` is not between 1 and 366, ``forbidden`` when the caller may not see the user.
    """
    with refusals(), replica.read_atomic(), replica.read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT day, requests, failures, tokens, cost, sessions_started, messages"
            " FROM get_user_activity_summary(p_user_id => %s::bigint, p_days => %s::integer)",
            [user_id, days],
        )
        rows = cursor.fetchall()
    return [DayActivity(*row) for row in rows]


@dataclass(frozen=True)
class UsageTotals:
    """The counters of a roll-up row (``ai_usage_daily`` / ``ai_usage_monthly``)."""

    requests: int
    successes: int
    failures: int  # every outcome but success
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost: Decimal
    average_latency_ms: int | None  # over the requests that reported one


@dataclass(frozen=True)
class DailyUsage:
    """One row of ``ai_usage_daily``: a UTC day, provider and model of the user."""

    day: date
    provider: str | None  # slug; None when the provider left the catalog
    model: str | None  # name; None when the model left the catalog
    totals: UsageTotals


@dataclass(frozen=True)
class MonthlyUsage:
    """One row of ``ai_usage_monthly``: a UTC calendar month of the user."""

    year: int
    month: int
    totals: UsageTotals


MAX_DAILY_DAYS = 366
_TOTALS_FIELDS = (
    "request_count",
    "success_count",
    "error_count",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "latency_ms_sum",
    "latency_count",
)


def _totals(row: dict) -> UsageTotals:
    return UsageTotals(
        requests=row["request_count"],
        successes=row["success_count"],
        failures=row["error_count"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_input_tokens=row["cached_input_tokens"],
        reasoning_tokens=row["reasoning_tokens"],
        total_tokens=row["total_tokens"],
        cost=row["cost"],
        average_latency_ms=(
            round(row["latency_ms_sum"] / row["latency_count"]) if row["latency_count"] else None
        ),
    )


def model_ids_named(*, name: str) -> list[int]:
    """The ids of the catalog models called ``name`` that the caller can see (any provider)."""
    return list(AIModel.objects.filter(name=name).values_list("id", flat=True))


def model_names() -> dict[int, str]:
    """The name of every catalog model the caller can see: ``{id: name}``."""
    return dict(AIModel.objects.values_list("pk", "name"))


def usage_daily_rows(
    *, user_id: int | OuterRef, date_from: date, date_to: date
) -> QuerySet[AIUsageDaily]:
    """The user's ``ai_usage_daily`` rows from ``date_from`` to ``date_to`` (UTC days,
    inclusive), served by its key (user, usage_date, ...): the one ORM reader of a user's daily
    usage, which each page lists or sums its own way.

    At most MAX_DAILY_DAYS days: ValueError for a longer range or one running backwards.
    """
    if date_to < date_from or (date_to - date_from).days >= MAX_DAILY_DAYS:
        raise ValueError("the range must run forward over at most 366 days")
    return AIUsageDaily.objects.filter(
        user_id=user_id, usage_date__gte=date_from, usage_date__lte=date_to
    )


def usage_daily_for_user(
    *, user_id: int, date_from: date, date_to: date, model_ids: Sequence[int] | None = None
) -> list[DailyUsage]:
    """Return the user's daily roll-up rows from ``date_from`` to ``date_to`` (UTC days,
    inclusive), oldest first, then by provider and model; only ``model_ids`` when given.

    At most MAX_DAILY_DAYS days: the caller checks the range (a longer one raises ValueError).
    Provider and model names come from the catalog the caller can see (None for a model that
    has left it: its rows stay).
    """
    rows = usage_daily_rows(user_id=user_id, date_from=date_from, date_to=date_to)
    if model_ids is not None:
        rows = rows.filter(model_id__in=model_ids)
    rows = list(
        rows.order_by("usage_date", "provider_id", "model_id").values(
            "usage_date", "provider_id", "model_id", *_TOTALS_FIELDS
        )
    )
    # Separate lookups: a join would drop the rows of models the catalog no longer shows.
    models = dict(
        AIModel.objects.filter(id__in={r["model_id"] for r in rows}).values_list("id", "name")
    )
    providers = dict(
        AIProvider.objects.filter(id__in={r["provider_id"] for r in rows}).values_list("id", "slug")
    )
    return [
        DailyUsage(
            day=row["usage_date"],
            provider=providers.get(row["provider_id"]),
            model=models.get(row["model_id"]),
            totals=_totals(row),
        )
        for row in rows
    ]


def usage_monthly_for_user(
    *, user_id: int, limit: int = 24, since: date | None = None
) -> list[MonthlyUsage]:
    """Return the user's ``limit`` latest monthly roll-up rows, newest first; with ``since``,
    only the months from ``since``'s on."""
    rows = AIUsageMonthly.objects.filter(user_id=user_id)
    if since is not None:
        rows = rows.filter(Q(year__gt=since.year) | Q(year=since.year, month__gte=since.month))
    rows = rows.order_by("-year", "-month").values("year", "month", *_TOTALS_FIELDS)[:limit]
    return [MonthlyUsage(year=r["year"], month=r["month"], totals=_totals(r)) for r in rows]


def catalog_models() -> list[CatalogModel]:
    """Return the active models of active providers, by provider then model name (cached:
    usage.catalog)."""
    return list(catalog().models)


# --- Staff dashboard: the user directory ----------------------------------------------------


@dataclass(frozen=True)
class DirectoryCosts:
    """This month to date against the same days of last month (Dec 1-7 against Nov 1-7; at
    the end of a longer month, the whole of the shorter one), and the annotations that read
    them for a queryset of users (``OuterRef("pk")``): ``cost_now`` from the month's
    ``ai_usage_monthly`` row (its key); ``cost_before`` from the user's ``ai_usage_daily`` rows
    (its key: user, usage_date, ...) of those days, or, when fewer days of last month are left
    out than taken in, last month's ``ai_usage_monthly`` row less the days left out (both
    roll-ups are written in the same transaction): at most half a month of daily rows a user.
    0 without usage."""

    month_start: date
    today: date
    before_start: date
    before_end: date

    @property
    def before_month_end(self) -> date:
        return self.month_start - timedelta(days=1)

    def annotations(self) -> dict:
        money = DecimalField(max_digits=18, decimal_places=6)
        zero = Value(Decimal(0), output_field=money)

        def month(first: date) -> Coalesce:
            row = AIUsageMonthly.objects.filter(
                user_id=OuterRef("pk"), year=first.year, month=first.month
            ).values("cost")[:1]
            return Coalesce(Subquery(row, output_field=money), zero, output_field=money)

        def days(first: date, last: date) -> Coalesce:
            rows = (
                usage_daily_rows(user_id=OuterRef("pk"), date_from=first, date_to=last)
                .order_by()
                .values("user_id")
                .annotate(total=Sum("cost"))
                .values("total")
            )
            return Coalesce(Subquery(rows, output_field=money), zero, output_field=money)

        taken = (self.before_end - self.before_start).days + 1
        left_out = (self.before_month_end - self.before_end).days
        if left_out == 0:
            before = month(self.before_start)
        elif left_out < taken:
            after = self.before_end + timedelta(days=1)
            before = month(self.before_start) - days(after, self.before_month_end)
        else:
            before = days(self.before_start, self.before_end)
        return {"cost_now": month(self.month_start), "cost_before": before}


def directory_costs(*, today: date) -> DirectoryCosts:
    """The periods the staff user directory compares on ``today`` (a UTC date)."""
    month_start = today.replace(day=1)
    before_end_of_month = month_start - timedelta(days=1)
    before_start = before_end_of_month.replace(day=1)
    before_end = min(before_start + timedelta(days=today.day - 1), before_end_of_month)
    return DirectoryCosts(
        month_start=month_start, today=today, before_start=before_start, before_end=before_end
    )
