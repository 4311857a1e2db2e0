"""Backups of the Witchcraft database and their verified restore.

``manage.py backup`` (:func:`backup_create`) writes a ``pg_dump`` custom-format file and its
manifest into ``BACKUP_DIR`` and keeps the newest ``BACKUP_KEEP``; ``manage.py restore``
(:func:`backup_restore`) restores one into a new database and verifies it against the manifest
(:func:`database_verify`). Modules: ``servers`` (where the database is), ``clients`` (which
``pg_dump``/``pg_restore``), ``inventory`` (counts, checksums, policies, functions), ``comparison``,
``archive`` (files, manifests, pruning), ``dump`` and ``restore``.
"""

from witchcraft.operations.backups.audit import BACKUP_CREATED, BACKUP_RESTORED
from witchcraft.operations.backups.dump import BackupResult, backup_create
from witchcraft.operations.backups.errors import BackupError
from witchcraft.operations.backups.restore import (
    RestoreResult,
    Verification,
    backup_restore,
    database_verify,
)

__all__ = [
    "BACKUP_CREATED",
    "BACKUP_RESTORED",
    "BackupError",
    "BackupResult",
    "RestoreResult",
    "Verification",
    "backup_create",
    "backup_restore",
    "database_verify",
]
