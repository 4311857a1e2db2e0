"""Check a base backup against its ``backup_manifest`` (written by ``pg_basebackup``).

What ``pg_verifybackup`` checks of the files, done here because the embedded server's build of
that program does not run: the manifest's own SHA-256, and every file it lists present with its
size and checksum (CRC32C by default, or a SHA family). Files PostgreSQL itself leaves out of
the comparison (the manifest, ``pg_wal``, the server's own configuration and signal files) are
skipped the same way. The WAL the manifest names is Barman's to keep, and the restore proves it
by replaying it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

MANIFEST = "backup_manifest"
_SKIPPED = ("backup_manifest", "postgresql.auto.conf", "standby.signal", "recovery.signal")
_CHUNK = 1 << 20


@dataclass
class ManifestCheck:
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _checksum(path: Path, algorithm: str) -> str:
    if algorithm == "CRC32C":
        value = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                value = crc32c.crc32c(chunk, value)
        return value.to_bytes(4, "little").hex()  # PostgreSQL prints the bytes as stored
    digest = hashlib.new(algorithm.lower().replace("-", ""))
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(data_dir: Path) -> ManifestCheck:
    """Compare ``data_dir`` with the ``backup_manifest`` in it; the problems found, if any."""
    check = ManifestCheck()
    path = data_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except OSError as exc:
        check.problems.append(f"no readable {MANIFEST} in {data_dir}: {exc.strerror}")
        return check
    marker = raw.rfind(b'"Manifest-Checksum"')
    try:
        manifest = json.loads(raw)
    except ValueError:
        check.problems.append(f"{MANIFEST} is not valid JSON")
        return check
    if marker < 0 or hashlib.sha256(raw[:marker]).hexdigest() != manifest.get("Manifest-Checksum"):
        check.problems.append(f"{MANIFEST}'s own checksum does not match its contents")
    for entry in manifest.get("Files", []):
        name = entry["Path"]
        if name in _SKIPPED or name.startswith("pg_wal/"):
            continue
        file = data_dir / name
        check.files += 1
        if not file.is_file():
            check.problems.append(f"{name}: missing")
            continue
        size = file.stat().st_size
        if size != entry["Size"]:
            check.problems.append(f"{name}: {size} bytes, the manifest says {entry['Size']}")
            continue
        check.bytes += size
        algorithm = entry.get("Checksum-Algorithm", "NONE")
        if algorithm != "NONE" and _checksum(file, algorithm) != entry["Checksum"]:
            check.problems.append(f"{name}: its {algorithm} checksum differs from the manifest's")
    return check
