"""The stored report: generating it for a month (``generate_monthly_report``) and reading it
against the month before, with the month's payments and biggest spenders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from billing.models import PaymentHistory, PaymentStatus, SubscriptionTier
from usage.dashboard_selectors import top_users_by_cost
from usage.models import AIUsageMonthly
from usage.monthly_reports.figures import (
    REPORT_FIGURES,
    Change,
    Line,
    MonthlyReport,
    Revenue,
    TopUser,
    _line,
)
from usage.monthly_reports.months import month_before
from witchcraft.platform import replica, rls

TOP = 10  # top users and top models

_REPORT_ROWS = """
SELECT year, month, dimension, key, subscribers, users, requests, tokens, cost, generated_at
  FROM usage_monthly_reports
 WHERE (year, month) IN ((%s, %s), (%s, %s))
"""


def _stored(month: date, previous: date) -> dict[date, dict[tuple[str, str], dict]]:
    """The stored rows of both months: {month: {(dimension, key): figures}}."""
    rows: dict[date, dict[tuple[str, str], dict]] = {month: {}, previous: {}}
    with replica.read_connection().cursor() as cursor:
        cursor.execute(_REPORT_ROWS, [month.year, month.month, previous.year, previous.month])
        for year, number, dimension, key, *figures, generated_at in cursor.fetchall():
            rows[date(year, number, 1)][(dimension, key)] = {
                **dict(zip(REPORT_FIGURES, figures, strict=True)),
                "generated_at": generated_at,
            }
    return rows


def _generated_at(rows: dict) -> datetime | None:
    return max((row["generated_at"] for row in rows.values()), default=None)


def _lines(
    dimension: str, now: dict, before: dict, *, known: bool, labels=None, current_only=False
) -> list[Line]:
    """The lines of one dimension: the keys of either month (of this month's only with
    ``current_only``), each against the month before."""
    keys = {key for (dim, key) in (*now, *({} if current_only else before)) if dim == dimension}
    labels = labels or {}
    return [
        _line(
            key,
            labels.get(key, key),
            now.get((dimension, key)),
            before.get((dimension, key)),
            known=known,
        )
        for key in keys
    ]


def _revenue(month: date, previous: date) -> list[Revenue]:
    """Succeeded payments per currency of both months (payment_history, by created_at)."""
    end = (month + timedelta(days=32)).replace(day=1)
    rows = (
        PaymentHistory.objects.filter(
            status=PaymentStatus.SUCCEEDED,
            created_at__gte=datetime.combine(previous, datetime.min.time(), tzinfo=UTC),
            created_at__lt=datetime.combine(end, datetime.min.time(), tzinfo=UTC),
        )
        .annotate(period=TruncMonth("created_at", tzinfo=UTC))
        .values("period", "currency")
        .annotate(amount=Sum("amount"), payments=Count("id"), payers=Count("user", distinct=True))
        .order_by()
    )
    by_month: dict[date, dict[str, dict]] = {month: {}, previous: {}}
    for row in rows:
        by_month[row["period"].date()][row["currency"]] = row
    zero = {"amount": Decimal(0), "payments": 0, "payers": 0}
    revenue = []
    for currency in sorted({*by_month[month], *by_month[previous]}):
        now = by_month[month].get(currency, zero)
        before = by_month[previous].get(currency, zero)
        revenue.append(
            Revenue(
                currency,
                Change(now["amount"], before["amount"], money=True),
                Change(now["payments"], before["payments"]),
                Change(now["payers"], before["payers"]),
            )
        )
    return revenue


def _top_users(month: date, previous: date) -> list[TopUser]:
    """The month's biggest spenders, with their figures of the month before."""
    top = top_users_by_cost(year=month.year, month=month.month, limit=TOP)
    before = {
        row["user_id"]: row
        for row in AIUsageMonthly.objects.filter(
            year=previous.year, month=previous.month, user_id__in=[u.user_id for u in top]
        ).values("user_id", "request_count", "total_tokens", "cost")
    }
    users = []
    for user in top:
        was = before.get(user.user_id, {"request_count": 0, "total_tokens": 0, "cost": Decimal(0)})
        users.append(
            TopUser(
                user.user_id,
                user.email,
                user.full_name,
                Change(user.requests, was["request_count"]),
                Change(user.tokens, was["total_tokens"]),
                Change(user.cost, was["cost"], money=True),
            )
        )
    return users


def _by_size(line: Line) -> tuple:
    return (-line.requests.current, -line.cost.current, line.key)


def monthly_report(*, month: date) -> MonthlyReport:
    """The report of ``month`` (its first day) against the month before. Five queries."""
    previous = month_before(month)
    stored = _stored(month, previous)
    now, before = stored[month], stored[previous]
    known = bool(before)
    tiers = {
        slug: (order, name)
        for slug, order, name in SubscriptionTier.objects.values_list("slug", "sort_order", "name")
    }
    plans = sorted(
        _lines("tier", now, before, known=known, labels={s: n for s, (_, n) in tiers.items()}),
        key=lambda line: (tiers.get(line.key, (1 << 30, ""))[0], line.key),
    )
    models = _lines("model", now, before, known=known, current_only=True)
    return MonthlyReport(
        month=month,
        previous=previous,
        generated_at=_generated_at(now),
        previous_generated_at=_generated_at(before),
        total=_line(
            "all", "All users", now.get(("total", "all")), before.get(("total", "all")), known=known
        ),
        tiers=plans,
        providers=sorted(_lines("provider", now, before, known=known), key=_by_size),
        models=sorted(models, key=_by_size)[:TOP],
        revenue=_revenue(month, previous),
        top_users=_top_users(month, previous),
    )


def monthly_report_generate(*, month: date) -> int:
    """Store the report of ``month`` (its first day) with ``generate_monthly_report``, the
    function monthly maintenance uses, in the service context. Returns the rows it inserted,
    changed or removed. A month that has not ended (by the database's clock) raises
    ``django.db.DatabaseError``."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.generate_monthly_report(%s)", [month])
        return cursor.fetchone()[0]
