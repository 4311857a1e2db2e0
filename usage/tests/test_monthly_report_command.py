"""``manage.py monthly_report``: the report of a complete month, generated when missing, as
text or CSV; bad months refused with a clear error and nothing written."""

import csv
import io
from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from usage import monthly_reports
from usage.tests.test_dashboard_reports import APRIL, MARCH, subscribe, used
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

TODAY = date(2026, 5, 20)


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(monthly_reports, "today", lambda: TODAY)


@pytest.fixture
def usage():
    """Ann on pro, with usage in March and April; no report stored."""
    ann = factories.UserFactory(email="ann@example.com")
    subscribe(ann, "pro", date(2026, 1, 1))
    used(ann, MARCH, requests=10, cost="2.00")
    used(ann, APRIL, requests=25, cost="5.00")
    return ann


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("monthly_report", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _stored(month: date | None = None) -> list[tuple]:
    sql = "SELECT year, month, dimension, key, generated_at FROM usage_monthly_reports"
    params = []
    if month:
        sql += " WHERE year = %s AND month = %s"
        params = [month.year, month.month]
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY 1, 2, 3, 4", params)
        return cursor.fetchall()


def test_prints_the_month_generating_the_missing_report(usage):
    out, err = _run("--month", "2026-04")

    assert "2026-04: report stored (4 rows written)" in err
    lines = out.splitlines()
    assert lines[0].startswith("Monthly report 2026-04 (generated ")
    assert lines[0].endswith(" UTC), against 2026-03")
    assert "2026-03 has no stored report: its figures are unknown." in lines
    assert any(line.split()[:3] == ["all", "requests", "25"] for line in lines)
    assert "Users by plan (the plan in force for most of the month)" in lines
    assert any(line.split()[:3] == ["pro", "subscribers", "1"] for line in lines)
    assert {row[2] for row in _stored(APRIL)} == {"total", "tier", "provider", "model"}


def test_the_last_complete_month_by_default_and_a_stored_report_is_kept(usage):
    _run("--month", "2026-03")
    _run()
    stored = _stored()
    out, err = _run()

    assert out.startswith("Monthly report 2026-04 (generated ")
    assert "change: +15 (+150.0 %)" in out  # requests against March's stored report
    assert err == ""  # nothing generated again
    assert _stored() == stored


def test_regenerate_stores_the_month_again(usage):
    _run("--month", "2026-04")
    used(usage, APRIL, model="claude-haiku-4-5", requests=1, cost="1.00")

    out, err = _run("--month", "2026-04", "--regenerate")

    assert "2026-04: report stored (" in err
    assert any(line.split()[:3] == ["all", "requests", "26"] for line in out.splitlines())


def test_csv_is_the_same_figures_as_the_page(usage):
    out, _ = _run("--month", "2026-04", "--csv")

    header, *rows = list(csv.reader(io.StringIO(out)))
    assert header == monthly_reports.CSV_HEADER
    assert ["2026-04", "total", "all", "requests", "25", "", "", ""] in rows
    assert rows == monthly_reports.csv_rows(monthly_reports.monthly_report(month=APRIL))


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", monthly_reports.MONTH_MALFORMED),
        ("0001-01", monthly_reports.MONTH_TOO_EARLY),
        ("26-04", monthly_reports.MONTH_MALFORMED),
        ("", monthly_reports.MONTH_MALFORMED),
        ("2026-05", "2026-05 has not ended yet: the last complete month is 2026-04."),
        ("2999-01", "2999-01 is in the future: the last complete month is 2026-04."),
    ],
)
def test_a_bad_month_is_refused_and_nothing_is_written(usage, month, message):
    with pytest.raises(CommandError) as caught:
        _run("--month", month)
    assert str(caught.value) == message
    assert _stored() == []


def test_a_month_the_database_has_not_seen_end_is_refused_clearly(usage, monkeypatch):
    """The command's clock ahead of the database's: the SQL function's refusal, in one line."""
    monkeypatch.setattr(monthly_reports, "today", lambda: date(3000, 6, 1))
    with pytest.raises(CommandError) as caught:
        _run("--month", "2999-01")
    assert str(caught.value) == "generate_monthly_report: 2999-01 has not ended yet"
    assert _stored() == []
