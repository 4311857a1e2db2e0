"""Backup files on disk: their names, their manifests, and pruning to the newest N.

A backup is two files in the backup folder: ``witchcraft-<database>-<YYYYmmddTHHMMSSZ>.dump``
(``pg_dump --format=custom``) and, beside it, the same name with ``.json``: the manifest (the
server's version, the client that wrote the dump, the dump's size and SHA-256, and the
:mod:`inventory <witchcraft.operations.backups.inventory>` taken in the dump's snapshot). Both are
written under a temporary name and renamed when complete, mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from witchcraft.operations.backups.errors import BackupError

MANIFEST_FORMAT = 1
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^witchcraft-(?P<label>.+)-(?P<stamp>\d{8}T\d{6}Z)\.(?P<ext>dump|json)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def label_of(database: str) -> str:
    """The database's name as it appears in file names (anything but ``[A-Za-z0-9_.-]`` -> _)."""
    return _UNSAFE.sub("_", database)


def dump_name(database: str, when: datetime) -> str:
    return f"witchcraft-{label_of(database)}-{when.astimezone(UTC).strftime(STAMP_FORMAT)}.dump"


def manifest_path(dump: Path) -> Path:
    return dump.with_suffix(".json")


@dataclass(frozen=True)
class BackupFile:
    path: Path
    label: str
    stamp: str


def backups_in(directory: Path, database: str) -> list[BackupFile]:
    """The backups of ``database`` in ``directory`` (by their dump file), oldest first."""
    label = label_of(database)
    found = []
    for path in directory.glob("witchcraft-*.dump") if directory.is_dir() else []:
        match = _NAME.match(path.name)
        if match and match["label"] == label:
            found.append(BackupFile(path, label, match["stamp"]))
    return sorted(found, key=lambda b: b.stamp)


def prune(
    directory: Path,
    database: str,
    keep: int,
    *,
    days: int | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Delete the backups of ``database`` older than ``days`` days (all but the newest ``keep``
    when ``days`` is None), never the newest ``keep``; dump and manifest go together, with
    manifests whose dump is gone and that are older than the oldest kept one.

    Returns the dump files deleted. Backups of other databases are never touched.
    """
    backups = backups_in(directory, database)
    candidates = backups[:-keep] if keep > 0 else backups
    if days is None:
        doomed = candidates
    else:
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).strftime(STAMP_FORMAT)
        doomed = [b for b in candidates if b.stamp < cutoff]
    for backup in doomed:
        manifest_path(backup.path).unlink(missing_ok=True)
        backup.path.unlink(missing_ok=True)
    kept = backups[len(doomed) :]  # the doomed are the oldest: a prefix
    if kept:
        oldest_kept = kept[0].stamp
        label = label_of(database)
        for manifest in directory.glob("witchcraft-*.json"):
            match = _NAME.match(manifest.name)
            if (
                match
                and match["label"] == label
                and match["stamp"] < oldest_kept
                and not manifest.with_suffix(".dump").exists()
            ):
                manifest.unlink(missing_ok=True)
    return [b.path for b in doomed]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def private_file(path: Path) -> int:
    """Create ``path`` (which must not exist) readable by its owner only; return its descriptor."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} already exists: is another backup running?") from None
    except OSError as exc:
        raise BackupError(f"cannot write in {path.parent}: {exc.strerror}") from None


def write_manifest(dump: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` beside ``dump`` (temporary name, then rename); return its path."""
    final = manifest_path(dump)
    temporary = final.with_name(f".{final.name}.partial")
    fd = private_file(temporary)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


def read_manifest(dump: Path) -> dict[str, Any]:
    """The manifest beside ``dump``; BackupError when missing, unreadable or of another format."""
    path = manifest_path(dump)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"no manifest beside the backup: {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read the manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BackupError(f"{path} is not a Witchcraft backup manifest (format {MANIFEST_FORMAT})")
    return manifest


def sync_directory(directory: Path) -> None:
    """Make the renames in ``directory`` durable."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def human_size(size: int) -> str:
    """``size`` bytes for people: ``812 bytes``, ``1.4 MB`` (powers of 1000)."""
    if size < 1000:
        return f"{size} bytes"
    value = size / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
