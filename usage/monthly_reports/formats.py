"""A report as CSV rows (one figure a row, safe from spreadsheet formulas) and as text for a
terminal."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

from usage.monthly_reports.figures import Change, MonthlyReport
from witchcraft.platform.csv_export import csv_cell

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
