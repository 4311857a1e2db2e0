"""``manage.py restore``: a backup into a NEW database on the configured server, then verified.

A restore never overwrites: an existing database name is refused. The new database is created
from ``template0`` with the source's encoding and locale, ``pg_restore`` of the server's major
fills it, and the inventory of the result is compared with the manifest: every table's row
count and checksum, the row-level-security flags and grants, the policies, functions,
triggers, indexes, constraints and views, and no sequence behind its column.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from psycopg import errors as pg_errors
from psycopg import sql

from witchcraft.operations.backups import archive, audit, comparison, inventory
from witchcraft.operations.backups.clients import Client, choose_client, first_error
from witchcraft.operations.backups.errors import BackupError
from witchcraft.operations.backups.servers import Server, configured_server, server_major

logger = logging.getLogger(__name__)

MAX_NAME_BYTES = 63  # PostgreSQL's identifier limit

# Outcomes recorded in the backup_restored audit row.
VERIFIED = "verified"
MISMATCH = "mismatch"
RESTORE_FAILED = "restore_failed"
VERIFY_FAILED = "verify_failed"


@dataclass(frozen=True)
class Verification:
    """The comparison of a restored database with its backup's manifest."""

    differences: list[str]
    totals: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    database: str
    client: Client
    server_version: str
    seconds: float
    restore_seconds: float
    verify_seconds: float
    verification: Verification
    no_owner: bool
    notes: list[str] = field(default_factory=list)


def resolve_backup(path: Path | str) -> Path:
    """``path`` as given, or a bare file name looked up in ``BACKUP_DIR``."""
    path = Path(path).expanduser()
    if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
        in_folder = Path(settings.BACKUP_DIR).expanduser() / path
        if in_folder.exists():
            path = in_folder
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    return path.resolve()


def drop_hint(database: str) -> str:
    name = sql.Identifier(database).as_string(None)
    return f"DROP DATABASE {name} WITH (FORCE)"


def backup_restore(
    *,
    path: Path | str,
    database: str,
    jobs: int = 1,
    client_dirs: list[Path] | None = None,
) -> RestoreResult:
    """Restore the backup at ``path`` into the new database ``database`` and verify it.

    Returns the result, verified or not: a restored database that differs from the manifest is
    left for inspection. Writes a ``backup_restored`` audit row (in the configured database)
    once the new database exists. Raises BackupError when nothing could be restored (the file,
    its manifest, the name, the client, the roles) or when ``pg_restore`` failed.
    """
    started = time.monotonic()
    path = resolve_backup(path)
    manifest = archive.read_manifest(path)
    if archive.sha256_of(path) != manifest["dump"]["sha256"]:
        raise BackupError(
            f"{path.name} does not match its manifest (SHA-256 differs): the file is damaged "
            "or is not the backup the manifest describes"
        )
    if not database or len(database.encode()) > MAX_NAME_BYTES:
        raise BackupError(f"the database name must be 1 to {MAX_NAME_BYTES} bytes long")
    if jobs < 1:
        raise BackupError(f"jobs must be at least 1, got {jobs}")
    server = configured_server()
    with server.connect(autocommit=True) as admin:
        major, version = server_major(admin)
        pg_restore = _client_for(manifest, major, version, server, client_dirs)
        no_owner, notes = check_roles(admin, manifest["roles"])
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if exists:
            raise BackupError(
                f"database {database!r} already exists: restore only creates a new database "
                "(it never overwrites); choose another name"
            )
        notes += create_database(admin, database, manifest)

    def record(outcome: str, **details: Any) -> None:
        audit.record(
            audit.BACKUP_RESTORED,
            file_name=path.name,
            severity="info" if outcome == VERIFIED else "warning",
            details={
                "source_database": manifest["database"],
                "database": database,
                "outcome": outcome,
                "client": f"pg_restore {pg_restore.version}",
                "server_version": version,
                "no_owner": no_owner,
                **details,
            },
        )

    restore_started = time.monotonic()
    try:
        run_pg_restore(
            pg_restore, server=server, path=path, database=database, jobs=jobs, no_owner=no_owner
        )
    except BackupError as exc:
        record(RESTORE_FAILED, error=str(exc))
        raise BackupError(
            f"{exc}; the database {database!r} is left for inspection ({drop_hint(database)})"
        ) from None
    verify_started = time.monotonic()
    try:
        verification = database_verify(database=database, manifest=manifest, server=server)
    except (BackupError, psycopg.Error) as exc:
        reason = _message(exc) if isinstance(exc, psycopg.Error) else str(exc)
        record(VERIFY_FAILED, error=reason)
        raise BackupError(
            f"restored, but the verification failed: {reason}; the database {database!r} is "
            f"left for inspection ({drop_hint(database)})"
        ) from None
    finished = time.monotonic()
    seconds = finished - started
    record(
        VERIFIED if verification.verified else MISMATCH,
        differences=len(verification.differences),
        seconds=round(seconds, 3),
    )
    return RestoreResult(
        path=path,
        database=database,
        client=pg_restore,
        server_version=version,
        seconds=seconds,
        restore_seconds=verify_started - restore_started,
        verify_seconds=finished - verify_started,
        verification=verification,
        no_owner=no_owner,
        notes=notes,
    )


def _client_for(
    manifest: dict[str, Any],
    major: int,
    version: str,
    server: Server,
    client_dirs: list[Path] | None,
) -> Client:
    source_major = manifest["server_major"]
    if major < source_major:
        raise BackupError(
            f"the backup is of PostgreSQL {manifest['server_version']}, this server runs "
            f"{version}: restore it on PostgreSQL {source_major} (or newer)"
        )
    return choose_client(
        "pg_restore",
        server_major=major,
        embedded=server.embedded,
        minimum_major=manifest["client"]["major"],
        dirs=client_dirs,
    )


def check_roles(conn: psycopg.Connection, roles: dict[str, list[str]]) -> tuple[bool, list[str]]:
    """Check the roles the backup names against this server (roles are cluster-wide).

    A role granted privileges or named by a policy (``witchcraft_app``) must exist: BackupError
    otherwise. An owner that is missing, or that the current user cannot act as, means
    ``--no-owner`` (the restoring user owns everything). Returns (no_owner, notes).
    """
    wanted = sorted({*roles["owners"], *roles["grantees"]})
    existing = {
        name
        for (name,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY (%s)", [wanted]
        ).fetchall()
    }
    missing = [role for role in roles["grantees"] if role not in existing]
    if missing:
        raise BackupError(
            f"role {', '.join(missing)} does not exist on this server, and the backup's policies "
            f"and grants need it: create it first (CREATE ROLE {missing[0]} LOGIN, as the "
            "migrations leave it) and grant it to the migration role"
        )
    not_ours = [
        owner
        for owner in roles["owners"]
        if owner not in existing
        or not conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [owner]).fetchone()[0]
    ]
    if not not_ours:
        return False, []
    user = conn.execute("SELECT current_user").fetchone()[0]
    return True, [
        f"owner {', '.join(not_ours)} missing here or not ours to use: restored with "
        f"--no-owner, so {user} owns everything (it must bypass row-level security, as the "
        "migration role does)"
    ]


def create_database(conn: psycopg.Connection, database: str, manifest: dict[str, Any]) -> list[str]:
    """``CREATE DATABASE`` from template0 with the source's encoding and, when this server has
    it, its locale. Returns notes for the report."""
    name = sql.Identifier(database)
    encoding = sql.Literal(manifest.get("encoding") or "UTF8")
    try:
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}"
            ).format(
                name,
                encoding,
                sql.Literal(manifest.get("lc_collate") or "C"),
                sql.Literal(manifest.get("lc_ctype") or "C"),
            )
        )
        return []
    except pg_errors.DuplicateDatabase:
        raise BackupError(
            f"database {database!r} already exists: restore only creates a new database"
        ) from None
    except (pg_errors.InvalidParameterValue, pg_errors.WrongObjectType, pg_errors.InvalidName):
        # The source's locale is not available on this server: create the database with the
        # server's default locale below, and say so in the report.
        logger.info(
            "locale %s not available: the server's default is used", manifest.get("lc_collate")
        )
    except psycopg.Error as exc:
        raise BackupError(f"cannot create database {database!r}: {_message(exc)}") from None
    try:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {}").format(name, encoding)
        )
    except psycopg.Error as exc:
        raise BackupError(f"cannot create database {database!r}: {_message(exc)}") from None
    return [
        f"locale {manifest.get('lc_collate')} is not available on this server: the new "
        "database uses the server's default locale"
    ]


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    text = getattr(diag, "message_primary", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def run_pg_restore(
    client: Client, *, server: Server, path: Path, database: str, jobs: int, no_owner: bool
) -> None:
    """Run ``pg_restore`` of ``path`` into ``database``; BackupError on its first error."""
    command = [
        str(client.path),
        "--exit-on-error",
        "--no-password",
        f"--jobs={jobs}",
        *(["--no-owner"] if no_owner else []),
        f"--dbname={server.conninfo(database)}",
        str(path),
    ]
    done = subprocess.run(  # noqa: S603 - a PostgreSQL client with our own arguments
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=server.child_env(),
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {first_error(done.stderr or done.stdout)}")


def database_verify(
    *, database: str, manifest: dict[str, Any], server: Server | None = None
) -> Verification:
    """Compare the database ``database`` (on the configured server) with ``manifest``."""
    server = server or configured_server()
    with server.connect(database) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        major, _ = server_major(conn)
        conn.rollback()
        inventory.prepare_session(conn)
        notes, ignore = [], frozenset()
        if major != manifest["server_major"]:
            ignore = comparison.DEPARSED
            notes.append(
                f"restored from PostgreSQL {manifest['server_major']} onto {major}: view "
                "definitions are deparsed differently across major versions, so views were "
                "checked by name, options and grants only"
            )
        actual = inventory.take(conn)
        differences = comparison.compare(manifest, actual, ignore=ignore)
        differences += inventory.sequences_behind(conn, actual)
        conn.rollback()
    return Verification(differences=differences, totals=inventory.totals(actual), notes=notes)


def restore_trial(
    *, path: Path, manifest: dict[str, Any], client: Client, server: Server
) -> Verification:
    """Restore ``path`` into a scratch database, verify it against ``manifest``, drop it.

    The proof that a dump written by a newer ``pg_dump`` restores on this server (and what
    ``backup --verify`` does). Raises BackupError when ``pg_restore`` fails.
    """
    scratch = f"wc_restore_check_{secrets.token_hex(6)}"
    with server.connect(autocommit=True) as admin:
        no_owner, _ = check_roles(admin, manifest["roles"])
        create_database(admin, scratch, manifest)
    try:
        run_pg_restore(
            client, server=server, path=path, database=scratch, jobs=1, no_owner=no_owner
        )
        return database_verify(database=scratch, manifest=manifest, server=server)
    finally:
        with server.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
            )
