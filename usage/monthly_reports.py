"""Monthly reports: one calendar month (UTC) against the month before, for the staff
dashboard's report page and ``manage.py monthly_report``.

The figures come from the stored report (``usage_monthly_reports``, written by
``generate_monthly_report(month)``, billing/sql/0008_monthly_reports.sql: users by the plan in
force for most of the month, requests, tokens, cost per plan, provider and model), the month's
succeeded payments (``payment_history``) and its biggest spenders (``ai_usage_monthly``, by
``idx_ai_usage_monthly_cost``); never the raw usage rows. A fixed number of queries, whatever
the number of users.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from billing.models import PaymentHistory, PaymentStatus, SubscriptionTier
from usage.dashboard_selectors import previous_month, top_users_by_cost
from usage.models import AIUsageMonthly
from witchcraft.platform import rls
from witchcraft.platform.csv_export import csv_cell

FIRST_MONTH = date(2000, 1, 1)  # usage_monthly_reports_year_valid
TOP = 10  # top users and top models

MONTH_MALFORMED = "Give the month as YYYY-MM (for example 2026-11)."
MONTH_TOO_EARLY = "Reports cover months from 2000-01 on."
MONTH_IN_FUTURE = "{month} is in the future: the last complete month is {last}."
MONTH_NOT_ENDED = "{month} has not ended yet: the last complete month is {last}."


def today() -> date:
    """Today in UTC: the one clock the month checks read (a test sets it)."""
    return datetime.now(UTC).date()


def month_label(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def last_complete_month(*, today: date) -> date:
    """The first day of the month before ``today``'s."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_before(month: date) -> date:
    year, number = previous_month(month.year, month.month)
    return date(year, number, 1)


class MonthError(ValueError):
    """A month no report can cover; the message says why (one of the MONTH_* texts)."""


def parse_month(text: str, *, today: date) -> date:
    """The first day of the month ``text`` names (YYYY-MM): a complete month from 2000-01 on."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise MonthError(MONTH_MALFORMED)
    if int(match[1]) < FIRST_MONTH.year:
        raise MonthError(MONTH_TOO_EARLY)
    month = date(int(match[1]), int(match[2]), 1)
    last = last_complete_month(today=today)
    if month > last:
        text = MONTH_IN_FUTURE if month > today else MONTH_NOT_ENDED
        raise MonthError(text.format(month=month_label(month), last=month_label(last)))
    return month


# --- Figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A figure of the month and of the month before (None: that month has no report)."""

    current: int | Decimal
    previous: int | Decimal | None
    money: bool = False

    @property
    def delta(self) -> int | Decimal | None:
        return None if self.previous is None else self.current - self.previous

    @property
    def percent(self) -> float | None:
        """The change in percent of the previous value; None when that is unknown or 0."""
        if not self.previous:
            return None
        return float(100 * (self.current - self.previous) / self.previous)

    @property
    def direction(self) -> str:
        delta = self.delta
        return "" if not delta else ("up" if delta > 0 else "down")

    @property
    def text(self) -> str:
        """``+234 (+23.4 %)``, ``-$1.25 (-3.0 %)``, ``+5 (new)``, ``no change``; ``—`` when
        unknown."""
        delta = self.delta
        if delta is None:
            return "—"
        if not delta:
            return "no change"
        sign = "+" if delta > 0 else "-"
        amount = f"${abs(delta):,.2f}" if self.money else f"{abs(delta):,}"
        percent = "new" if not self.previous else f"{sign}{abs(self.percent):.1f} %"
        return f"{sign}{amount} ({percent})"


REPORT_FIGURES = ("subscribers", "users", "requests", "tokens", "cost")
NO_FIGURES = {"subscribers": 0, "users": 0, "requests": 0, "tokens": 0, "cost": Decimal(0)}


@dataclass(frozen=True)
class Line:
    """A row of the stored report (the month's total, a plan, a provider or a model) with its
    month-over-month change. ``subscribers``: users on the plan during the month (plans and
    the total only); ``users``: those who used anything."""

    key: str
    label: str
    subscribers: Change
    users: Change
    requests: Change
    tokens: Change
    cost: Change


def _line(key: str, label: str, now: dict | None, before: dict | None, *, known: bool) -> Line:
    """``known``: the previous month has a report (a key missing from it had nothing)."""
    now = now or NO_FIGURES
    before = before or (NO_FIGURES if known else None)
    return Line(
        key,
        label,
        **{
            name: Change(now[name], None if before is None else before[name], money=name == "cost")
            for name in REPORT_FIGURES
        },
    )


@dataclass(frozen=True)
class Revenue:
    """Succeeded payments of the month in one currency, against the month before."""

    currency: str
    amount: Change
    payments: Change
    payers: Change


@dataclass(frozen=True)
class TopUser:
    user_id: int
    email: str
    full_name: str
    requests: Change
    tokens: Change
    cost: Change


@dataclass(frozen=True)
class MonthlyReport:
    month: date
    previous: date
    generated_at: datetime | None  # None: no report stored for the month
    previous_generated_at: datetime | None
    total: Line
    tiers: list[Line]
    providers: list[Line]
    models: list[Line]  # the top ones by requests
    revenue: list[Revenue]
    top_users: list[TopUser]

    @property
    def exists(self) -> bool:
        return self.generated_at is not None

    @property
    def label(self) -> str:
        return month_label(self.month)

    @property
    def previous_label(self) -> str:
        return month_label(self.previous)


# --- Reads ------------------------------------------------------------------------------------

_REPORT_ROWS = """
SELECT year, month, dimension, key, subscribers, users, requests, tokens, cost, generated_at
  FROM usage_monthly_reports
 WHERE (year, month) IN ((%s, %s), (%s, %s))
"""


def _stored(month: date, previous: date) -> dict[date, dict[tuple[str, str], dict]]:
    """The stored rows of both months: {month: {(dimension, key): figures}}."""
    rows: dict[date, dict[tuple[str, str], dict]] = {month: {}, previous: {}}
    with connection.cursor() as cursor:
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


# --- Generation -------------------------------------------------------------------------------


def monthly_report_generate(*, month: date) -> int:
    """Store the report of ``month`` (its first day) with ``generate_monthly_report``, the
    function monthly maintenance uses, in the service context. Returns the rows it inserted,
    changed or removed. A month that has not ended (by the database's clock) raises
    ``django.db.DatabaseError``."""
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT public.generate_monthly_report(%s)", [month])
        return cursor.fetchone()[0]


# --- CSV and text -----------------------------------------------------------------------------

CSV_HEADER = ["month", "section", "name", "figure", "value", "previous", "change", "change_percent"]
PLAN_FIGURES = ("subscribers", "users", "requests", "tokens", "cost")
USAGE_FIGURES = ("users", "requests", "tokens", "cost")


def _figures(report: MonthlyReport) -> Iterable[tuple[str, str, str, Change]]:
    """(section, name, figure, change) for every figure of the report, in page order."""
    for name in PLAN_FIGURES:
        yield "total", "all", name, getattr(report.total, name)
    for line in report.tiers:
        for name in PLAN_FIGURES:
            yield "tier", line.key, name, getattr(line, name)
    for revenue in report.revenue:
        for name in ("amount", "payments", "payers"):
            yield "revenue", revenue.currency, name, getattr(revenue, name)
    for user in report.top_users:
        for name in ("requests", "tokens", "cost"):
            yield "top_user", user.email, name, getattr(user, name)
    for section, lines in (("model", report.models), ("provider", report.providers)):
        for line in lines:
            for name in USAGE_FIGURES:
                yield section, line.key, name, getattr(line, name)


def _plain(value) -> str:
    return "" if value is None else str(value)


def csv_rows(report: MonthlyReport) -> list[list[str]]:
    """The report as CSV rows (after CSV_HEADER): one figure a row, with the month before's
    value and the change; every cell safe from spreadsheet formulas."""
    rows = []
    for section, name, figure, change in _figures(report):
        percent = change.percent
        rows.append(
            [
                report.label,
                section,
                name,
                figure,
                _plain(change.current),
                _plain(change.previous),
                _plain(change.delta),
                "" if percent is None else f"{percent:.1f}",
            ]
        )
    return [[csv_cell(cell) for cell in row] for row in rows]


SECTION_TITLES = {
    "total": "Totals",
    "tier": "Users by plan (the plan in force for most of the month)",
    "revenue": "Revenue (succeeded payments)",
    "top_user": "Top users by cost",
    "model": "Top models by requests",
    "provider": "Providers",
}


def _shown(change: Change) -> str:
    value = change.current
    return f"${value:,.2f}" if change.money else f"{value:,}"


def text_lines(report: MonthlyReport) -> list[str]:
    """The report as text for a terminal: each figure, the month before's and the change."""
    if report.exists:
        made = f"generated {report.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    else:
        made = "no stored report"
    lines = [f"Monthly report {report.label} ({made}), against {report.previous_label}"]
    if not report.previous_generated_at:
        lines.append(f"{report.previous_label} has no stored report: its figures are unknown.")
    figures = list(_figures(report))
    width = max((len(f"{name} {figure}") for _, name, figure, _ in figures), default=0)
    section_now = None
    for section, name, figure, change in figures:
        if section != section_now:
            lines += ["", SECTION_TITLES[section]]
            section_now = section
        before = (
            "—"
            if change.previous is None
            else _shown(Change(change.previous, None, money=change.money))
        )
        label = f"{name} {figure}"
        lines.append(
            f"  {label:<{width}}  {_shown(change):>16}  {report.previous_label}: {before:>14}"
            f"  change: {change.text}"
        )
    return lines
