"""Fail fast, in one line, when the configured database cannot be reached."""

from __future__ import annotations

import re
import sys

from django.db import connections
from django.db.utils import OperationalError

from witchcraft.platform.embedded_db import EmbeddedServerError

_PREFIX = re.compile(r"^(connection failed: )?connection to server (at|on) .*? failed: ", re.I)


def describe_failure(alias: str, exc: BaseException) -> str:
    """Return one line naming the server and why it refused us."""
    settings_dict = connections[alias].settings_dict
    if settings_dict.get("EMBEDDED"):
        where = "the embedded PostgreSQL"
    else:
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        where = f"PostgreSQL at {host}:{port}"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = _PREFIX.sub("", lines[0]) if lines else type(exc).__name__
    database = settings_dict.get("NAME")
    return f"witchcraft: cannot connect to {where} (database {database!r}): {reason}"


def require_database(alias: str = "default") -> None:
    """Connect once; on failure print one line to stderr and exit with status 2."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
    except (OperationalError, EmbeddedServerError) as exc:
        print(describe_failure(alias, exc), file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        connection.close()
