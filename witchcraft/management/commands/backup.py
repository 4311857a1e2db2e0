"""``manage.py backup``: pg_dump of the configured database into BACKUP_DIR, pruned to N."""

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

from witchcraft.operations.backups import BackupError, backup_create
from witchcraft.operations.backups.archive import human_size


class ParagraphHelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description's paragraphs kept as written."""


class Command(BaseCommand):
    help = """\
Back up the configured database with pg_dump (custom format) and keep the newest N backups.

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

Then the folder is pruned to the newest N backups of this database (dump and manifest together);
backups of other databases are left alone. Prints the file, its size and the time taken, and
writes a backup_created audit row. Restore with: manage.py restore FILE --database NEW_NAME.

Settings: BACKUP_DIR (default .witchcraft/backups), BACKUP_KEEP (default 7)."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        kwargs.setdefault("formatter_class", ParagraphHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep",
            type=int,
            metavar="N",
            help=f"backups of this database to keep (default BACKUP_KEEP: {settings.BACKUP_KEEP})",
        )
        parser.add_argument(
            "--dir",
            type=Path,
            metavar="PATH",
            help=f"the backup folder (default BACKUP_DIR: {settings.BACKUP_DIR})",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="also restore the new backup into a scratch database, verify it and drop it",
        )

    def handle(
        self, *args: Any, keep: int | None, dir: Path | None, verify: bool, **options: Any
    ) -> None:
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
        self.stdout.write(f"pruned: {len(result.pruned)} older backup(s) (keeping {kept})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
