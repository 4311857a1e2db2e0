"""Monthly reports: one calendar month (UTC) against the month before, for the staff
dashboard's report page and ``manage.py monthly_report``.

The figures come from the stored report (``usage_monthly_reports``, written by
``generate_monthly_report(month)``, billing/sql/0008_monthly_reports.sql: users by the plan in
force for most of the month, requests, tokens, cost per plan, provider and model), the month's
succeeded payments (``payment_history``) and its biggest spenders (``ai_usage_monthly``, by
``idx_ai_usage_monthly_cost``); never the raw usage rows. A fixed number of queries, whatever
the number of users.

The package holds them by topic: months (which months a report covers), figures (what a
report holds), report (generating and reading the stored report) and formats (CSV and text);
every public name stays importable from ``usage.monthly_reports``. The page and the command
call ``reports.today()`` through this package, so a test that sets
``usage.monthly_reports.today`` sets their clock.
"""

from usage.monthly_reports.figures import (
    NO_FIGURES,
    REPORT_FIGURES,
    Change,
    Line,
    MonthlyReport,
    Revenue,
    TopUser,
)
from usage.monthly_reports.formats import (
    CSV_HEADER,
    PLAN_FIGURES,
    SECTION_TITLES,
    USAGE_FIGURES,
    csv_rows,
    text_lines,
)
from usage.monthly_reports.months import (
    FIRST_MONTH,
    MONTH_IN_FUTURE,
    MONTH_MALFORMED,
    MONTH_NOT_ENDED,
    MONTH_TOO_EARLY,
    MonthError,
    last_complete_month,
    month_before,
    month_label,
    parse_month,
    today,
)
from usage.monthly_reports.report import TOP, monthly_report, monthly_report_generate

__all__ = [
    "CSV_HEADER",
    "FIRST_MONTH",
    "MONTH_IN_FUTURE",
    "MONTH_MALFORMED",
    "MONTH_NOT_ENDED",
    "MONTH_TOO_EARLY",
    "NO_FIGURES",
    "PLAN_FIGURES",
    "REPORT_FIGURES",
    "SECTION_TITLES",
    "TOP",
    "USAGE_FIGURES",
    "Change",
    "Line",
    "MonthError",
    "MonthlyReport",
    "Revenue",
    "TopUser",
    "csv_rows",
    "last_complete_month",
    "month_before",
    "month_label",
    "monthly_report",
    "monthly_report_generate",
    "parse_month",
    "text_lines",
    "today",
]
