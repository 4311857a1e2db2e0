"""``manage.py backup``: a consistent ``pg_dump`` of the configured database, with its manifest.

One REPEATABLE READ transaction exports its snapshot; ``pg_dump --snapshot`` reads exactly that
snapshot while the same transaction takes the inventory (row counts, checksums, policies,
functions...), so the manifest describes the dump and nothing written meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

from witchcraft.operations.backups import archive, audit, inventory
from witchcraft.operations.backups.clients import Client, choose_client, first_error
from witchcraft.operations.backups.errors import BackupError
from witchcraft.operations.backups.restore import restore_trial
from witchcraft.operations.backups.servers import Server, configured_server, server_major

# pg_dump waits at most this long for a table lock (an open migration, say) before giving up.
LOCK_WAIT_TIMEOUT = "60s"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest_path: Path
    size: int
    seconds: float
    tables: int
    rows: int
    server_version: str
    client: Client
    restore_checked: bool
    pruned: list[Path]


def backup_create(
    *,
    directory: Path | None = None,
    keep: int | None = None,
    verify: bool = False,
    now: datetime | None = None,
    client_dirs: list[Path] | None = None,
) -> BackupResult:
    """Back up the configured database into ``directory``, then delete its backups older than
    BACKUP_RETENTION_DAYS days, never the newest ``keep``.

    ``directory`` and ``keep`` default to ``BACKUP_DIR`` and ``BACKUP_KEEP``. ``verify``
    restores the new dump into a scratch database, checks it against the manifest and drops
    it; this is forced when the only ``pg_dump`` found is newer than the server. ``now`` names
    the file (tests inject it); ``client_dirs`` replaces the client search path (tests).
    Writes a ``backup_created`` audit row. Raises BackupError.
    """
    started = time.monotonic()
    directory = Path(directory or settings.BACKUP_DIR).expanduser().resolve()
    keep = settings.BACKUP_KEEP if keep is None else keep
    if keep < 1:
        raise BackupError(f"keep must be at least 1 (the new backup counts), got {keep}")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    server = configured_server()
    _make_directory(directory)
    name = archive.dump_name(server.database, now)
    final = directory / name
    if final.exists() or archive.manifest_path(final).exists():
        raise BackupError(f"{final} already exists")
    temporary = directory / f".{name}.partial"

    with server.connect() as conn:
        major, version = server_major(conn)
        pg_dump = choose_client(
            "pg_dump", server_major=major, embedded=server.embedded, dirs=client_dirs
        )
        verify = verify or pg_dump.major != major
        pg_restore = None
        if verify:
            pg_restore = choose_client(
                "pg_restore",
                server_major=major,
                embedded=server.embedded,
                minimum_major=pg_dump.major,
                dirs=client_dirs,
            )
        os.close(archive.private_file(temporary))
        try:
            taken, snapshot_at, database_info = _dump(conn, server, pg_dump, temporary)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    try:
        size = temporary.stat().st_size
        manifest: dict[str, Any] = {
            "format": archive.MANIFEST_FORMAT,
            "file": name,
            "database": server.database,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "snapshot_at": snapshot_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "server_version": version,
            "server_major": major,
            **database_info,
            "client": {"program": "pg_dump", "version": pg_dump.version, "major": pg_dump.major},
            "dump": {"size": size, "sha256": archive.sha256_of(temporary)},
            "checksum_method": inventory.CHECKSUM_METHOD,
            "session_settings": inventory.SESSION_SETTINGS,
            "totals": inventory.totals(taken),
            "restore_checked": None,
            **taken,
        }
        if verify:
            try:
                trial = restore_trial(
                    path=temporary, manifest=manifest, client=pg_restore, server=server
                )
            except BackupError as exc:
                raise BackupError(
                    f"the dump made by {pg_dump.describe()} does not restore on PostgreSQL "
                    f"{version} ({exc}), so it was not kept{_client_advice(pg_dump, major)}"
                ) from None
            if not trial.verified:
                raise BackupError(
                    f"the dump made by {pg_dump.describe()} did not restore identically on "
                    f"PostgreSQL {version}, so it was not kept{_client_advice(pg_dump, major)}: "
                    f"{trial.differences[0]}"
                    + (
                        f" (and {len(trial.differences) - 1} more)"
                        if len(trial.differences) > 1
                        else ""
                    )
                )
            manifest["restore_checked"] = {
                "client": {"program": "pg_restore", "version": pg_restore.version},
                "server_version": version,
            }
        manifest_file = archive.write_manifest(final, manifest)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    archive.sync_directory(directory)

    pruned = archive.prune(
        directory, server.database, keep, days=settings.BACKUP_RETENTION_DAYS, now=now
    )
    seconds = time.monotonic() - started
    totals = manifest["totals"]
    audit.record(
        audit.BACKUP_CREATED,
        file_name=name,
        details={
            "directory": str(directory),
            "size": size,
            "tables": totals["tables"],
            "rows": totals["rows"],
            "pruned": len(pruned),
            "client": f"pg_dump {pg_dump.version}",
            "server_version": version,
            "restore_checked": verify,
            "seconds": round(seconds, 3),
        },
    )
    return BackupResult(
        path=final,
        manifest_path=manifest_file,
        size=size,
        seconds=seconds,
        tables=totals["tables"],
        rows=totals["rows"],
        server_version=version,
        client=pg_dump,
        restore_checked=verify,
        pruned=pruned,
    )


def _client_advice(pg_dump: Client, major: int) -> str:
    if pg_dump.major == major:
        return ""
    return f"; install the PostgreSQL {major} client (postgresql-client-{major}) or set PG_BIN_DIR"


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BackupError(f"the backup folder {directory} is not writable")


def _dump(
    conn: psycopg.Connection, server: Server, pg_dump: Client, target: Path
) -> tuple[dict[str, Any], datetime, dict[str, str]]:
    """Run ``pg_dump`` into ``target`` in an exported snapshot and take the inventory in it.

    Returns the inventory, the snapshot's time and the database's encoding and locale.
    """
    conn.rollback()  # a fresh transaction, in the snapshot's isolation level
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    inventory.prepare_session(conn)
    snapshot, snapshot_at = conn.execute("SELECT pg_export_snapshot(), now()").fetchone()
    encoding, collate, ctype = conn.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype"
        " FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    command = [
        str(pg_dump.path),
        "--format=custom",
        f"--file={target}",
        f"--snapshot={snapshot}",
        f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}",
        "--no-password",
        f"--dbname={server.conninfo(server.database)}",
    ]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - a PostgreSQL client with our own arguments
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=server.child_env(),
        )
        try:
            # The snapshot stays valid while this transaction is open: pg_dump may still be
            # importing it, so the transaction ends only after pg_dump does.
            taken = inventory.take(conn)
        except BaseException:
            process.kill()
            process.wait()
            raise
        returncode = process.wait()
        conn.rollback()
        if returncode != 0:
            errors.seek(0)
            raise BackupError(
                f"pg_dump failed: {first_error(errors.read().decode(errors='replace'))}"
            )
    return taken, snapshot_at, {"encoding": encoding, "lc_collate": collate, "lc_ctype": ctype}
