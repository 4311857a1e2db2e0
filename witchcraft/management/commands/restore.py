"""``manage.py restore FILE --database NAME``: restore a logical backup into a new database,
verified; ``manage.py restore --to-time T`` / ``--to-latest``: a point-in-time restore into a new
data directory and port (witchcraft.operations.pitr.restore)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser

from witchcraft.management.commands.backup import ParagraphHelpFormatter, _first_line
from witchcraft.operations.backups import BackupError, backup_restore
from witchcraft.operations.backups.restore import drop_hint
from witchcraft.operations.pitr import PitrError
from witchcraft.operations.pitr import restore as pitr_restore


class Command(BaseCommand):
    help = """\
Restore a backup made by `manage.py backup` into a NEW database on the configured server, and
verify it against the backup's manifest.

FILE is the .dump file (a bare file name is looked up in BACKUP_DIR); its manifest (.json) must
be beside it, and the file must match the SHA-256 the manifest recorded. NAME must not exist:
restore never overwrites a database. It is created from template0 with the source's encoding and
locale, then filled by a pg_restore of this server's major version: the bundled one for the
embedded server; otherwise from $PG_BIN_DIR, /usr/lib/postgresql/<major>/bin or the PATH, a newer
one only when none of that major exists, never an older one. A backup of a newer PostgreSQL major
than this server's is refused.

Roles are cluster-wide: witchcraft_app (and any role the backup grants privileges to) must exist
on this server, or the restore is refused before anything is created. When the owner of the
backed-up objects is missing here, or is not a role you can act as, --no-owner is used (and said).

Any pg_restore error stops the restore: exit status 1. Then the new database is compared with
the manifest: every table's row count and checksum (partitions included), row-level-security
flags and grants, the policies, functions, triggers, indexes, constraints and views, and no
sequence behind its column. Prints a short report and "verified" only when everything matches;
otherwise lists what differs and exits 1. A database that failed either way is left for
inspection (drop it with DROP DATABASE "NAME" WITH (FORCE)). Once the new database exists, a
backup_restored audit row is written to the configured (source) database's audit_logs.

Example:
  manage.py restore witchcraft-witchcraft-20260101T020000Z.dump --database witchcraft_check

Point in time (PITR_ENABLED): --to-time "2026-12-07 14:04:59+00" (or --to-latest) restores the
newest base backup that ended before that time into a NEW data directory (--into, default
<WITCHCRAFT_DATA_DIR>/restores/<now>) and starts it on a new port (--port, default a free one),
never over the running server. The base backup's files are first checked against its
backup_manifest; Barman copies it with the WAL (the segment still being streamed included), and
the copy replays up to the last transaction committed at or before the time, then leaves
recovery. Every table is then read in full (each page's checksum is checked) and the critical
tables' rows counted. The copy is left running; the steps to switch over to it are printed.

  manage.py restore --to-time "2026-12-07 14:04:59+00"
  manage.py restore --to-latest --into /srv/witchcraft-restored --port 5499"""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        kwargs.setdefault("formatter_class", ParagraphHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", type=Path, metavar="FILE", nargs="?", help="the logical backup's .dump file"
        )
        parser.add_argument(
            "--database",
            metavar="NAME",
            help="the new database to create on the configured server (must not exist)",
        )
        point = parser.add_mutually_exclusive_group()
        point.add_argument(
            "--to-time",
            metavar="TIME",
            help='point-in-time restore to TIME, with its offset: "2026-12-07 14:04:59+00"',
        )
        point.add_argument(
            "--to-latest",
            action="store_true",
            help="point-in-time restore to the latest WAL received",
        )
        parser.add_argument(
            "--into",
            type=Path,
            metavar="DIR",
            help="the new data directory of a point-in-time restore (must not exist or be empty)",
        )
        parser.add_argument(
            "--port", type=int, metavar="PORT", help="the restored server's port (default: free)"
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            metavar="N",
            help="pg_restore's parallel jobs (default 1)",
        )

    def handle(
        self,
        *args: Any,
        file: Path | None,
        database: str | None,
        jobs: int,
        to_time: str | None,
        to_latest: bool,
        into: Path | None,
        port: int | None,
        **options: Any,
    ) -> None:
        if to_time is not None or to_latest:
            if file is not None or database is not None:
                raise CommandError("--to-time/--to-latest take no FILE and no --database")
            self._point_in_time(to_time=to_time, into=into, port=port)
            return
        if file is None or database is None:
            raise CommandError(
                "give FILE and --database NAME (a logical backup), or --to-time/--to-latest"
            )
        if into is not None or port is not None:
            raise CommandError("--into and --port are for --to-time/--to-latest")
        self._logical(file=file, database=database, jobs=jobs)

    def _point_in_time(self, *, to_time: str | None, into: Path | None, port: int | None):
        if port is not None and not 1024 <= port <= 65535:
            raise CommandError(f"--port must be between 1024 and 65535, not {port}")
        try:
            target = pitr_restore.parse_target(to_time) if to_time is not None else None
            restored = pitr_restore.restore_to(target=target, directory=into, port=port)
        except PitrError as exc:
            raise CommandError(f"restore failed: {exc}") from None
        backup = restored.backup
        self.stdout.write(
            f"restored base backup {backup.backup_id} (ended {backup.end_time:%Y-%m-%d %H:%M:%S}"
            f" UTC) and its WAL into {restored.directory} in {restored.seconds:.1f} s"
        )
        self.stdout.write(f"WAL: {restored.receiver_note}")
        wanted = "the latest WAL received" if restored.target is None else restored.target
        replayed = (
            f"last transaction replayed committed at {restored.replayed_to.isoformat()}"
            if restored.replayed_to
            else "replayed to the end of the WAL"
        )
        self.stdout.write(f"target: {wanted}; {replayed}, at {restored.reached_lsn}")
        self.stdout.write(
            f"checked: {restored.manifest_files} files against the base backup's manifest; "
            f"{restored.tables} tables read in full ({restored.rows:,} rows)"
        )
        self.stdout.write(
            "critical tables: "
            + ", ".join(f"{name} {count:,}" for name, count in restored.critical.items())
        )
        self.stdout.write(f"running: {restored.conninfo()} (stop: {restored.stop_command()})")
        self.stdout.write("verified")
        self.stdout.write("To switch over:")
        for number, step in enumerate(pitr_restore.switch_over_steps(restored), 1):
            self.stdout.write(f"  {number}. {step}")

    def _logical(self, *, file: Path, database: str, jobs: int) -> None:
        try:
            result = backup_restore(path=file, database=database, jobs=jobs)
        except BackupError as exc:
            raise CommandError(f"restore failed: {exc}") from None
        except psycopg.Error as exc:
            raise CommandError(f"restore failed: {_first_line(exc)}") from None
        self.stdout.write(
            f"restored {result.path.name} into database {database!r} with "
            f"{result.client.describe()} on PostgreSQL {result.server_version} "
            f"in {result.seconds:.1f} s (pg_restore {result.restore_seconds:.1f} s, "
            f"verification {result.verify_seconds:.1f} s)"
        )
        for note in [*result.notes, *result.verification.notes]:
            self.stdout.write(f"note: {note}")
        totals = result.verification.totals
        self.stdout.write(
            f"checked: {totals['tables']} tables ({totals['rows']:,} rows), "
            f"{totals['policies']} policies, {totals['functions']} functions, "
            f"{totals['triggers']} triggers, {totals['indexes']} indexes, "
            f"{totals['constraints']} constraints, {totals['views']} views, "
            f"{totals['sequences']} sequences"
        )
        if not result.verification.verified:
            for difference in result.verification.differences:
                self.stdout.write(f"differs: {difference}")
            count = len(result.verification.differences)
            raise CommandError(
                f"database {database!r} does not match the backup ({count} difference"
                f"{'s' if count != 1 else ''} listed above); it is left for inspection "
                f"({drop_hint(database)} when done)"
            )
        self.stdout.write("verified")
