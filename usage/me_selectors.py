"""Reads for the user's own usage pages: ``/me/usage/``, and the usage sums of ``/me/`` (the
overview, which spans domains, is composed in witchcraft/selfservice/overview.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Sum

from usage.dashboard_selectors.periods import Change, Period, comparison_label
from usage.models import AIModel, AIProvider, AIUsageMonthly
from usage.selectors import MonthlyUsage, usage_daily_rows, usage_monthly_for_user

# --- The user's own usage: /me/usage/ and the sums of /me/ -------------------------------------
# Every read names ``user_id`` although row-level security already limits the runtime role to
# the viewer's rows: a staff member is an admin to the policies and would otherwise see all.

MONTHLY_HISTORY = 24
RETIRED_MODEL = "Retired model #{id}"
RETIRED_PROVIDER = "Retired provider #{id}"
_SUMS = {"requests": Sum("request_count"), "tokens": Sum("total_tokens"), "cost": Sum("cost")}


@dataclass(frozen=True)
class UsageSum:
    """Requests, total tokens and cost summed over roll-up rows (zeros without rows)."""

    requests: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)

    @classmethod
    def of(cls, row: dict) -> UsageSum:
        """The sums of an aggregate row over ``_SUMS`` (SQL gives NULL over no rows)."""
        return cls(
            requests=row["requests"] or 0,
            tokens=row["tokens"] or 0,
            cost=Decimal(0) if row["cost"] is None else row["cost"],
        )


def usage_today_and_month(*, user_id: int, today: date) -> tuple[UsageSum, UsageSum]:
    """The user's sums for the UTC day ``today`` (ai_usage_daily) and its month
    (ai_usage_monthly): one query each, both served by the roll-ups' user-first keys."""
    day = usage_daily_rows(user_id=user_id, date_from=today, date_to=today).aggregate(**_SUMS)
    month = AIUsageMonthly.objects.filter(
        user_id=user_id, year=today.year, month=today.month
    ).aggregate(**_SUMS)
    return UsageSum.of(day), UsageSum.of(month)


@dataclass(frozen=True)
class DaySum:
    """One UTC day of the user's usage, over every provider and model."""

    day: date
    usage: UsageSum


@dataclass(frozen=True)
class UsageShare:
    """One model's or provider's part of a range's usage."""

    name: str
    provider: str  # the provider's name (for a provider: its own name)
    usage: UsageSum
    cost_share: Decimal | None  # percent of the range's cost; None when the range cost nothing


@dataclass(frozen=True)
class UsageReport:
    """What ``/me/usage/`` shows for a range of UTC days."""

    date_from: date
    date_to: date
    total: UsageSum
    days: list[DaySum]  # every day of the range, oldest first, zeros included
    models: list[UsageShare]  # costliest first
    providers: list[UsageShare]  # costliest first
    months: list[MonthlyUsage]  # the latest MONTHLY_HISTORY months, newest first


def usage_by_day_for_user(*, user_id: int, date_from: date, date_to: date) -> list[DaySum]:
    """Every UTC day from ``date_from`` to ``date_to`` (inclusive), oldest first, with the
    user's usage summed in SQL over providers and models; days without usage are zeros.

    At most MAX_DAILY_DAYS days (ValueError otherwise).
    """
    sums = {
        row["usage_date"]: UsageSum.of(row)
        for row in usage_daily_rows(user_id=user_id, date_from=date_from, date_to=date_to)
        .values("usage_date")
        .annotate(**_SUMS)
        .order_by()
    }
    days = (date_from + timedelta(days=n) for n in range((date_to - date_from).days + 1))
    return [DaySum(day=day, usage=sums.get(day, UsageSum())) for day in days]


def _share(cost: Decimal, total: Decimal) -> Decimal | None:
    return (cost * 100 / total).quantize(Decimal("0.1")) if total else None


def usage_breakdown_for_user(
    *, user_id: int, date_from: date, date_to: date
) -> tuple[UsageSum, list[UsageShare], list[UsageShare]]:
    """The user's total over the range, and its split by model and by provider (each summed
    in SQL, costliest first). Models and providers that left the catalog keep their rows,
    named RETIRED_MODEL / RETIRED_PROVIDER. At most MAX_DAILY_DAYS days (ValueError otherwise).
    """
    rows = usage_daily_rows(user_id=user_id, date_from=date_from, date_to=date_to)
    by_model = list(
        rows.values("model_id", "provider_id").annotate(**_SUMS).order_by("-cost", "model_id")
    )
    by_provider = list(
        rows.values("provider_id").annotate(**_SUMS).order_by("-cost", "provider_id")
    )
    # Separate lookups: a join would drop the rows of what the catalog no longer shows.
    model_names = dict(
        AIModel.objects.filter(id__in={r["model_id"] for r in by_model})
        .order_by()  # the default ordering would join (and filter by) the providers
        .values_list("id", "display_name")
    )
    provider_names = dict(
        AIProvider.objects.filter(id__in={r["provider_id"] for r in by_provider})
        .order_by()
        .values_list("id", "name")
    )

    def provider_name(provider_id: int) -> str:
        return provider_names.get(provider_id) or RETIRED_PROVIDER.format(id=provider_id)

    total = UsageSum(
        requests=sum(r["requests"] for r in by_provider),
        tokens=sum(r["tokens"] for r in by_provider),
        cost=sum((r["cost"] for r in by_provider), Decimal(0)),
    )
    models = [
        UsageShare(
            name=model_names.get(r["model_id"]) or RETIRED_MODEL.format(id=r["model_id"]),
            provider=provider_name(r["provider_id"]),
            usage=UsageSum.of(r),
            cost_share=_share(r["cost"], total.cost),
        )
        for r in by_model
    ]
    providers = [
        UsageShare(
            name=provider_name(r["provider_id"]),
            provider=provider_name(r["provider_id"]),
            usage=UsageSum.of(r),
            cost_share=_share(r["cost"], total.cost),
        )
        for r in by_provider
    ]
    return total, models, providers


def usage_report_for_user(*, user_id: int, date_from: date, date_to: date) -> UsageReport:
    """The usage page's data for the range: daily sums, the split by model and provider, and
    the monthly history. A fixed number of queries. ValueError for a range over
    MAX_DAILY_DAYS days or running backwards (the page's form refuses those first)."""
    total, models, providers = usage_breakdown_for_user(
        user_id=user_id, date_from=date_from, date_to=date_to
    )
    return UsageReport(
        date_from=date_from,
        date_to=date_to,
        total=total,
        days=usage_by_day_for_user(user_id=user_id, date_from=date_from, date_to=date_to),
        models=models,
        providers=providers,
        months=usage_monthly_for_user(user_id=user_id, limit=MONTHLY_HISTORY),
    )


@dataclass(frozen=True)
class UsageComparison:
    """The range's sums (``now``) against those of the period it is compared with."""

    period: Period
    previous: Period
    now: UsageSum
    before: UsageSum
    label: str  # "vs Nov 1-7"

    @property
    def requests(self) -> Change:
        return Change(self.now.requests, self.before.requests)

    @property
    def tokens(self) -> Change:
        return Change(self.now.tokens, self.before.tokens)

    @property
    def cost(self) -> Change:
        return Change(self.now.cost, self.before.cost)


def usage_comparison_for_user(
    *, user_id: int, period: Period, previous: Period, now: UsageSum, today: date
) -> UsageComparison:
    """The user's sums over ``period`` (``now``, already read) against ``previous``: one query
    of the daily roll-up."""
    before = usage_daily_rows(
        user_id=user_id, date_from=previous.start, date_to=previous.end
    ).aggregate(**_SUMS)
    return UsageComparison(
        period=period,
        previous=previous,
        now=now,
        before=UsageSum.of(before),
        label=comparison_label(period, previous, today=today),
    )
