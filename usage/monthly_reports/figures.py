"""What a report holds: each figure against the month before (Change), a row of the stored
report (Line), revenue per currency, the top users, and the whole MonthlyReport."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from usage.monthly_reports.months import month_label


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
