"""``manage.py monthly_report --month 2026-11 [--csv] [--regenerate]``: the monthly report of one
complete month against the month before, as the staff dashboard's report page shows it."""

import csv

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, transaction

from usage import monthly_reports as reports
from witchcraft.platform import rls
from witchcraft.platform.maintenance_command import database_error_message


class Command(BaseCommand):
    help = (
        "Print the monthly report of a complete month (default: the last one) against the month "
        "before: users by plan, requests, tokens, cost, revenue, top users and models. A month "
        "with no stored report is generated first, with the function monthly maintenance uses."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", help="YYYY-MM (default: the last complete month)")
        parser.add_argument(
            "--csv", action="store_true", dest="as_csv", help="write CSV to stdout instead"
        )
        parser.add_argument(
            "--regenerate",
            action="store_true",
            help="store the month's report again even when one is stored",
        )

    def handle(self, *args, month=None, as_csv=False, regenerate=False, **options):
        today = reports.today()
        try:
            first = (
                reports.parse_month(month, today=today)
                if month is not None
                else reports.last_complete_month(today=today)
            )
        except reports.MonthError as error:
            raise CommandError(str(error)) from None
        report = self._read(first)
        if regenerate or not report.exists:
            try:
                changed = reports.monthly_report_generate(month=first)
            except DatabaseError as error:
                raise CommandError(database_error_message(error)) from None
            self.stderr.write(f"{report.label}: report stored ({changed} rows written)")
            report = self._read(first)
        if as_csv:
            self._write_csv(report)
        else:
            self.stdout.write("\n".join(reports.text_lines(report)))

    @staticmethod
    def _read(month):
        with transaction.atomic(), rls.service_context():
            return reports.monthly_report(month=month)

    def _write_csv(self, report) -> None:
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(reports.CSV_HEADER)
        writer.writerows(reports.csv_rows(report))
