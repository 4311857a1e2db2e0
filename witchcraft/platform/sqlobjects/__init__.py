"""One live definition of every SQL function, trigger, policy and view, and the migrations
that install it.

The current definition of each lives in exactly one file, named after it, in the app that owns
it (:mod:`.live`): ``<app>/sql/functions/<name>.sql`` (``auth.user_id.sql`` for a schema other
than ``public``), ``sql/triggers/<trigger>.sql``, ``sql/policies/<table>.sql`` (every policy of
the table, and its row-level-security switches) and ``sql/views/<view>.sql``. That file is what
a newcomer reads and edits. Migrations are history: a migration that changes an object holds a
frozen copy of its file as it was then (:class:`DefineSQL`, with the text's SHA-256), so a
shipped migration never changes when the live file does, and migrating back re-installs what
the previous migration froze (:mod:`.history`).

``manage.py sqlmigrations`` writes the migration for every live file that differs from what
the migrations install (:mod:`.writer`); ``--check`` fails when they differ (a live file edited
without a migration, a migration edited after it was written, a file without a migration or an
object without a file), as ``makemigrations --check`` does for models. Supabase's declarative
schemas (schema files, migrations generated from their diff) are the pattern; here the frozen
text is compared rather than two databases, so a comment is part of the definition.

The objects the numbered SQL files of the first migrations created were adopted once by
baseline migrations (``adopted=True``): they run the live text again (repairing a database
migrated before a numbered file was edited in place) and reverse to nothing, because the
numbered migrations before them own what was there.
"""

from witchcraft.platform.sqlobjects.history import (
    DefineSQL,
    Frozen,
    drift,
    frozen_definition,
    migrated_definitions,
)
from witchcraft.platform.sqlobjects.live import (
    KINDS,
    LiveDefinition,
    SqlObjectError,
    key,
    live_definitions,
    read_live,
    sha256,
    statements,
)
from witchcraft.platform.sqlobjects.writer import pending, signatures_of, write_migrations

__all__ = [
    "KINDS",
    "DefineSQL",
    "Frozen",
    "LiveDefinition",
    "SqlObjectError",
    "drift",
    "frozen_definition",
    "key",
    "live_definitions",
    "migrated_definitions",
    "pending",
    "read_live",
    "sha256",
    "signatures_of",
    "statements",
    "write_migrations",
]
