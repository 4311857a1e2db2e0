"""The ground floor of maintenance: run one SQL maintenance function as the service, and the
base of the commands that do it (each domain's ``manage.py`` maintenance commands, and the
scheduled jobs' commands of witchcraft/operations/maintenance.py, which record their runs).

The work itself lives in SQL; a command sets ``sql`` (one statement returning a jsonb object)
and ``keys`` (the order in which the summary is printed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction

from witchcraft.platform import rls

DRY_RUN_NOTICE = "dry run: nothing was changed"
ERROR_LIMIT = 500  # characters of a run's error (maintenance_runs_error_is_one_short_line)


def run_maintenance(
    sql: str, *, dry_run: bool, params: Sequence[Any] | dict[str, Any] = ()
) -> dict[str, Any]:
    """Run ``sql`` (one statement returning one jsonb object) as the service; return that object.

    With ``dry_run`` the work is rolled back, so the object says what would have changed.
    Database errors propagate (``django.db.DatabaseError``).
    """
    with transaction.atomic(), rls.service_context():
        with connection.cursor() as cursor:
            cursor.execute(sql, params if isinstance(params, dict) else list(params))
            (summary,) = cursor.fetchone()
        if dry_run:
            transaction.set_rollback(True)
    # Django has psycopg load jsonb as text (JSONField decodes it itself).
    return json.loads(summary) if isinstance(summary, str | bytes) else summary


def database_error_message(exc: DatabaseError) -> str:
    """The one-line message of a database error (the server's primary message when known)."""
    diag = getattr(exc.__cause__, "diag", None)
    message = getattr(diag, "message_primary", None) or str(exc) or exc.__class__.__name__
    return message.strip().splitlines()[0]


def error_line(exc: BaseException) -> str:
    """One line (at most ERROR_LIMIT characters) saying why ``exc`` happened: the server's
    primary message for a database error (never its DETAIL, which may quote row values)."""
    if isinstance(exc, DatabaseError):
        text = database_error_message(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:ERROR_LIMIT] or type(exc).__name__


def format_summary(summary: dict[str, Any], keys: Sequence[str] = ()) -> list[str]:
    """``key: value`` lines, values aligned; ``keys`` first in that order, any others after."""
    ordered = [k for k in keys if k in summary] + sorted(k for k in summary if k not in keys)
    width = max((len(k) for k in ordered), default=0) + 1
    return [f"{key + ':':<{width}} {summary[key]}" for key in ordered]


class MaintenanceCommand(BaseCommand):
    """A command that runs one SQL maintenance function and prints what it did.

    Subclasses set ``sql`` (one statement returning a jsonb object) and ``keys`` (the order in
    which the summary is printed), and may override :meth:`get_params`.
    """

    sql: str = ""
    keys: Sequence[str] = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="do the work in a transaction that is rolled back, and print what would change",
        )
        parser.add_argument(
            "--json", action="store_true", help="print the summary as one JSON object"
        )

    def get_params(self, options: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        return {}

    def summary_get(self, *, dry_run: bool, options: dict[str, Any]) -> dict[str, Any]:
        """Do the work (rolled back with ``dry_run``) and return its summary."""
        return run_maintenance(self.sql, dry_run=dry_run, params=self.get_params(options))

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        try:
            summary = self.summary_get(dry_run=dry_run, options=options)
        except DatabaseError as exc:
            message = database_error_message(exc)
            if not message.startswith(self.job_name):
                message = f"{self.job_name}: {message}"
            raise CommandError(message) from exc
        if dry_run:
            # With --json, stdout holds the JSON alone.
            (self.stderr if options["json"] else self.stdout).write(DRY_RUN_NOTICE)
        if options["json"]:
            ordered = {k: summary[k] for k in self.keys if k in summary} | summary
            self.stdout.write(json.dumps(ordered))
        else:
            for line in format_summary(summary, self.keys):
                self.stdout.write(line)

    @property
    def job_name(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]
