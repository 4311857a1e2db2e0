"""``manage.py restore FILE --database NAME``: restore a backup into a new database, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser

from witchcraft.management.commands.backup import ParagraphHelpFormatter, _first_line
from witchcraft.operations.backups import BackupError, backup_restore
from witchcraft.operations.backups.restore import drop_hint


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
  manage.py restore witchcraft-witchcraft-20260101T020000Z.dump --database witchcraft_check"""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        kwargs.setdefault("formatter_class", ParagraphHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, metavar="FILE", help="the backup's .dump file")
        parser.add_argument(
            "--database",
            required=True,
            metavar="NAME",
            help="the new database to create on the configured server (must not exist)",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            metavar="N",
            help="pg_restore's parallel jobs (default 1)",
        )

    def handle(self, *args: Any, file: Path, database: str, jobs: int, **options: Any) -> None:
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
