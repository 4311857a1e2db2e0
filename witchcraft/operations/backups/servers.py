"""Where the configured database lives, for the PostgreSQL client programs and for psycopg.

The connection parameters are Django's own (``DatabaseWrapper.get_connection_params``), so the
embedded server's socket is found the same way the web process finds it. The password never
reaches a command line: client programs get it in ``PGPASSWORD``, in their environment only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections
from psycopg.conninfo import make_conninfo

from witchcraft.operations.backups.errors import BackupError
from witchcraft.platform.dbcheck import describe_failure
from witchcraft.platform.embedded_db import EmbeddedServerError

# Keys of Django's connection parameters that are not libpq keywords.
_NOT_LIBPQ = ("cursor_factory", "context", "prepare_threshold", "dbname", "password")


@dataclass(frozen=True)
class Server:
    """The configured PostgreSQL server: libpq parameters (no database, no password)."""

    alias: str
    database: str
    embedded: bool
    params: dict[str, Any]
    password: str = field(default="", repr=False)

    def connect(self, dbname: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
        """Open a connection to ``dbname`` (default: the configured database) on this server."""
        try:
            return psycopg.connect(
                dbname=dbname or self.database,
                autocommit=autocommit,
                **self.params,
                **({"password": self.password} if self.password else {}),
            )
        except psycopg.Error as exc:
            raise BackupError(describe_failure(self.alias, exc)) from None

    def conninfo(self, dbname: str) -> str:
        """A libpq connection string for ``dbname``, without the password (fit for argv)."""
        return make_conninfo(dbname=dbname, **{k: str(v) for k, v in self.params.items()})

    def child_env(self) -> dict[str, str]:
        """The environment for a client program: this process's, plus the password if any."""
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def configured_server(alias: str = "default") -> Server:
    """The server of the ``alias`` database (started first when it is the embedded one)."""
    connection = connections[alias]
    try:
        params = connection.get_connection_params()
    except EmbeddedServerError as exc:
        raise BackupError(describe_failure(alias, exc)) from None
    return Server(
        alias=alias,
        database=params["dbname"],
        embedded=bool(connection.settings_dict.get("EMBEDDED")),
        params={k: v for k, v in params.items() if k not in _NOT_LIBPQ and v is not None},
        password=params.get("password") or "",
    )


def server_major(conn: psycopg.Connection) -> tuple[int, str]:
    """The server's major version and its full version string (``SHOW server_version``)."""
    number = int(conn.execute("SHOW server_version_num").fetchone()[0])
    version = conn.execute("SHOW server_version").fetchone()[0]
    return number // 10000, version
