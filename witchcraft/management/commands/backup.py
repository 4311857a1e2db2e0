"""``manage.py backup``: pg_dump of the configured database into BACKUP_DIR, kept by age; with
``--now``, ``--base``, ``--archive``, ``--drill``: the point-in-time recovery jobs run at once,
recorded like the worker's (witchcraft.operations.pitr.jobs); ``--status``: how backups stand."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.db import transaction

from witchcraft.models import MaintenanceRun
from witchcraft.operations.backups import BackupError, backup_create
from witchcraft.operations.backups.archive import human_size
from witchcraft.operations.maintenance import MaintenanceBusy, MaintenanceFailed
from witchcraft.operations.pitr import jobs as pitr_jobs
from witchcraft.operations.pitr.status import backup_status, status_lines
from witchcraft.platform import rls


class ParagraphHelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description's paragraphs kept as written."""


class Command(BaseCommand):
    help = """\
Back up the configured database with pg_dump (custom format); keep backups for a number of days.

Writes <dir>/witchcraft-<database>-<YYYYmmddTHHMMSSZ>.dump and, beside it, its manifest
<same name>.json: the PostgreSQL version, the database, the time and, for every table of the
public and auth schemas (partitions included), its row count and a checksum, plus the
row-level-security policies, functions, triggers, indexes, constraints, views and grants. The
counts and checksums are taken in the very snapshot pg_dump reads (an exported snapshot), so
they describe the dump exactly. The manifest holds no row data and no password; both files are
written under a temporary name, renamed when complete, and readable by their owner only (0600).

The client: the pg_dump bundled with the embedded server; with DATABASE_URL, a pg_dump of the
server's major version, looked for in $PG_BIN_DIR, /usr/lib/postgresql/<major>/bin and the PATH.
A newer pg_dump is used only when none of that major exists, and its dump is then restored into
a scratch database and verified before it is kept (what --verify does); an older one is refused.
The password, if any, reaches pg_dump in its environment (PGPASSWORD), never its command line.

Then the folder is pruned: backups of this database older than BACKUP_RETENTION_DAYS days go
(dump and manifest together), but never the newest N (BACKUP_KEEP, or --keep); backups of other
databases are left alone. Prints the file, its size and the time taken, and
writes a backup_created audit row. Restore with: manage.py restore FILE --database NEW_NAME.

Settings: BACKUP_DIR (default .witchcraft/backups), BACKUP_RETENTION_DAYS (default 7),
BACKUP_KEEP (default 7).

The worker's backup jobs, run now and recorded in maintenance_runs (README, Backups):
  --now      a base backup (point-in-time recovery) and a logical dump: the seed's manual
             backup before a major change (make backup)
  --base     a base backup only          --archive  one WAL archiving check (Barman's cron)
  --drill    the restore drill           --status   the figures of the monitoring page"""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        kwargs.setdefault("formatter_class", ParagraphHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep",
            type=int,
            metavar="N",
            help="the newest backups of this database always kept, whatever their age "
            f"(default BACKUP_KEEP: {settings.BACKUP_KEEP})",
        )
        parser.add_argument(
            "--dir",
            type=Path,
            metavar="PATH",
            help=f"the backup folder (default BACKUP_DIR: {settings.BACKUP_DIR})",
        )
        jobs = parser.add_mutually_exclusive_group()
        for flag, text in (
            ("--now", "a base backup and a logical dump now, recorded (make backup)"),
            ("--base", "a base backup now, recorded"),
            ("--archive", "one WAL archiving check now (Barman's cron), recorded"),
            ("--drill", "the restore drill now, recorded"),
            ("--status", "print how backups stand (the monitoring page's figures)"),
        ):
            jobs.add_argument(flag, action="store_true", help=text)
        parser.add_argument(
            "--verify",
            action="store_true",
            help="also restore the new backup into a scratch database, verify it and drop it",
        )

    def handle(
        self, *args: Any, keep: int | None, dir: Path | None, verify: bool, **options: Any
    ) -> None:
        chosen = [name for name in ("now", "base", "archive", "drill") if options[name]]
        if chosen or options["status"]:
            if keep is not None or dir is not None or verify:
                raise CommandError("--keep, --dir and --verify are for the logical dump alone")
            if options["status"]:
                self._status()
                return
            jobs = {
                "now": [pitr_jobs.JOB_BASE, pitr_jobs.JOB_LOGICAL],
                "base": [pitr_jobs.JOB_BASE],
                "archive": [pitr_jobs.JOB_WAL],
                "drill": [pitr_jobs.JOB_DRILL],
            }[chosen[0]]
            for job in jobs:
                self._run(job)
            return
        self._logical(keep=keep, dir=dir, verify=verify)

    def _run(self, job: str) -> None:
        if job != pitr_jobs.JOB_LOGICAL and not settings.PITR_ENABLED:
            raise CommandError(f"{job}: point-in-time recovery is off (PITR_ENABLED=false)")
        try:
            summary = pitr_jobs.run(job, source=MaintenanceRun.Source.COMMAND)
        except (MaintenanceBusy, MaintenanceFailed) as exc:
            raise CommandError(str(exc)) from None
        figures = ", ".join(
            f"{key} {value}" for key, value in (summary or {}).items() if value is not None
        )
        self.stdout.write(f"{job}: {figures}")

    def _status(self) -> None:
        with transaction.atomic(), rls.service_context():
            status = backup_status()
            for line in status_lines(status):
                self.stdout.write(line)

    def _logical(self, *, keep: int | None, dir: Path | None, verify: bool) -> None:
        try:
            result = backup_create(directory=dir, keep=keep, verify=verify)
        except BackupError as exc:
            raise CommandError(f"backup failed: {exc}") from None
        except psycopg.Error as exc:
            raise CommandError(f"backup failed: {_first_line(exc)}") from None
        self.stdout.write(
            f"backup: {result.path} ({human_size(result.size)}) in {result.seconds:.1f} s"
        )
        self.stdout.write(
            f"manifest: {result.manifest_path.name} ({result.tables} tables, {result.rows:,} rows)"
        )
        self.stdout.write(
            f"client: {result.client.describe()}, server PostgreSQL {result.server_version}"
        )
        if result.restore_checked:
            self.stdout.write(
                "restore checked: restored into a scratch database, verified, dropped"
            )
        kept = settings.BACKUP_KEEP if keep is None else keep
        self.stdout.write(
            f"pruned: {len(result.pruned)} backup(s) older than "
            f"{settings.BACKUP_RETENTION_DAYS} days (never the newest {kept})"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
