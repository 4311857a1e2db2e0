"""The monthly reports of the demo's history, stored as operators store them.

Monthly maintenance stores a month's report on the 1st of the next month, so a database that
really lived through the demo's window would hold the report of every month of it that has
ended. After the load (roll-ups written), each one is stored with
``usage.monthly_reports.monthly_report_generate``, the path of ``manage.py monthly_report``:
``generate_monthly_report(month)`` in the service context, reading the daily roll-up and the
subscription history.

Reports already stored are generated again too: the demo users' subscription history reaches
months before the window (they signed up long ago), and ``--reset-demo`` removes the usage of
earlier demo users, so a report stored before the load would no longer match the data. The
function rewrites only what changed, so a report that still matches costs one read.
"""

from __future__ import annotations

from datetime import date

from django.db import connection

from usage.monthly_reports import monthly_report_generate
from witchcraft.demo import bulk
from witchcraft.demo.plan import Window

TABLE = "usage_monthly_reports"


def complete_months(window: Window) -> list[date]:
    """The first day of each month of the window that ended before its ``now``."""
    return [bulk.moment(start).date() for start in window.period_starts[:-1]]


def stored_months() -> list[date]:
    """The months with a stored report (read in the caller's context)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT make_date(year, month, 1) FROM public.usage_monthly_reports ORDER BY 1"
        )
        return [month for (month,) in cursor.fetchall()]


def store_reports(window: Window) -> int:
    """Store the report of every complete month of the window and again every stored one, in
    month order; return the rows written, changed or removed."""
    months = sorted(set(complete_months(window)) | set(stored_months()))
    return sum(monthly_report_generate(month=month) for month in months)
