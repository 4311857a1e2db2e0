"""One live definition of every SQL function, and the migrations that install it.

The current body of a function lives in exactly one file, named after it:
``<app>/sql/functions/<name>.sql`` (``auth.user_id.sql`` for a schema other than ``public``).
That file is the source a newcomer reads and edits. Migrations are history: a migration that
changes a function holds a frozen copy of the file as it was then (a :class:`DefineSQL`
operation with the text's SHA-256), so a shipped migration never changes when the live file
does, and migrating back re-installs the definition the previous migration froze.

``manage.py sqlmigrations`` writes the migration for every live file that differs from what
the migrations install; ``manage.py sqlmigrations --check`` fails when they differ (a live file
edited without a migration, or a migration edited after it was written), as
``makemigrations --check`` does for models. Supabase's declarative schemas (schema files, and
migrations generated from their diff) are the pattern; unlike a diff of two databases, the
frozen text is compared, so a comment is part of the definition.

The functions the numbered SQL files of the first migrations created were adopted once by a
baseline migration per app (``adopted=True``): it re-runs the live text (which also repairs a
database migrated before a shipped SQL file was edited in place), and reverses to nothing,
because the numbered migrations before it own what was there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlparse
from django.apps import apps
from django.db import connection, migrations, transaction
from django.db.migrations.loader import MigrationLoader

# The apps whose folders hold live definitions (the project's own, not Django's or procrastinate's).
PROJECT_APPS = ("accounts", "agents", "billing", "usage", "witchcraft")
FUNCTIONS = "functions"
_QUALIFIED = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")
_CREATE_FUNCTION = re.compile(
    r"^\s*CREATE\s+OR\s+REPLACE\s+FUNCTION\s+(?P<name>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\s*\(",
    re.IGNORECASE | re.MULTILINE,
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def qualified(name: str) -> str:
    """``record_ai_usage`` -> ``public.record_ai_usage``; ``auth.user_id`` as it is."""
    return name if "." in name else f"public.{name}"


def file_name(name: str) -> str:
    """The live file's name for a qualified name (``public.`` left out)."""
    schema, _, short = name.partition(".")
    return f"{short}.sql" if schema == "public" else f"{name}.sql"


@dataclass(frozen=True)
class LiveDefinition:
    """One live file: the definition of the function ``name`` owned by the app ``app``."""

    app: str
    name: str
    path: Path
    text: str


class SqlObjectError(Exception):
    """A live file that does not define what its name says."""


def read_live(path: Path, app: str) -> LiveDefinition:
    text = path.read_text()
    name = qualified(path.name.removesuffix(".sql"))
    found = {qualified(m.group("name").lower()) for m in _CREATE_FUNCTION.finditer(text)}
    if found != {name}:
        raise SqlObjectError(
            f"{path}: a live file defines the function it is named after and nothing else"
            f" (CREATE OR REPLACE FUNCTION {name}(...)); found {sorted(found) or 'none'}"
        )
    return LiveDefinition(app=app, name=name, path=path, text=text)


def live_definitions(app_labels: Iterable[str] = PROJECT_APPS) -> dict[str, LiveDefinition]:
    """Every live file of the project, by qualified name."""
    found: dict[str, LiveDefinition] = {}
    for label in app_labels:
        folder = Path(apps.get_app_config(label).path) / "sql" / FUNCTIONS
        for path in sorted(folder.glob("*.sql")):
            definition = read_live(path, label)
            if definition.name in found:
                raise SqlObjectError(
                    f"{definition.name} is defined twice: {found[definition.name].path} and {path}"
                )
            found[definition.name] = definition
    return found


def statements(text: str) -> list[str]:
    """The statements of a live file, one by one (what RunSQL does with a script)."""
    return [s for s in (part.strip() for part in sqlparse.split(text)) if s.strip(";\n ")]


class DefineSQL(migrations.operations.base.Operation):
    """Install the frozen ``sql`` of one function; reverse to the definition the migration
    ``previous`` (``"app.migration"``) froze, or drop it when there was none, or do nothing for
    a definition ``adopted`` from the numbered SQL files before the first frozen one."""

    reduces_to_sql = True
    reversible = True

    def __init__(
        self,
        name: str,
        sql: str,
        sha256: str,
        previous: str | None = None,
        adopted: bool = False,
        dropped: Sequence[str] = (),
        added: Sequence[str] = (),
    ) -> None:
        if not _QUALIFIED.fullmatch(name):
            raise SqlObjectError(f"{name!r} is not a schema-qualified function name")
        self.name = name
        self.sql = sql
        self.sha256 = sha256
        self.previous = previous
        self.adopted = adopted
        # Signatures the previous definition had and this one has not (dropped first), and the
        # ones only this one has (dropped when it is reversed): CREATE OR REPLACE with other
        # arguments makes a second function instead of replacing the first.
        self.dropped = list(dropped)
        self.added = list(added)

    def deconstruct(self):
        kwargs = {"name": self.name, "sql": self.sql, "sha256": self.sha256}
        if self.previous:
            kwargs["previous"] = self.previous
        if self.adopted:
            kwargs["adopted"] = True
        if self.dropped:
            kwargs["dropped"] = self.dropped
        if self.added:
            kwargs["added"] = self.added
        return (self.__class__.__name__, [], kwargs)

    def state_forwards(self, app_label, state) -> None:
        """Functions are not part of Django's model state."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        for signature in self.dropped:
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {signature}", params=None)
        for statement in statements(self.sql):
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if self.adopted:
            return
        if self.previous:
            before = frozen_definition(self.previous, self.name)
            for statement in statements(before.sql):
                schema_editor.execute(statement, params=None)
            for signature in self.added:
                schema_editor.execute(f"DROP FUNCTION IF EXISTS {signature}", params=None)
            return
        schema, _, short = self.name.partition(".")
        # Every overload of the name: a live file holds all of them.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = %s AND p.proname = %s",
                [schema, short],
            )
            signatures = [row[0] for row in cursor.fetchall()]
        for signature in signatures:
            schema_editor.execute(f"DROP FUNCTION {signature}", params=None)

    def describe(self) -> str:
        return f"Define function {self.name}"

    @property
    def migration_name_fragment(self) -> str:
        return self.name.partition(".")[2]


def _defines(operations) -> Iterable[DefineSQL]:
    for operation in operations:
        if isinstance(operation, DefineSQL):
            yield operation
        elif isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _defines(operation.database_operations)


def frozen_definition(migration: str, name: str) -> DefineSQL:
    """The DefineSQL of ``name`` in ``migration`` (``"app.0012_x"``), read from disk."""
    app_label, _, migration_name = migration.partition(".")
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = [d for d in _defines(loader.get_migration(app_label, migration_name).operations)]
    for definition in found:
        if definition.name == name:
            return definition
    raise SqlObjectError(f"{migration} does not define {name}")


@dataclass(frozen=True)
class Frozen:
    """The last definition of a function the migrations install, and where it is."""

    migration: str
    operation: DefineSQL


def migrated_definitions(loader: MigrationLoader | None = None) -> dict[str, Frozen]:
    """What the migrations on disk install, name by name: the last DefineSQL in migration
    order (the order ``migrate`` applies them in)."""
    loader = loader or MigrationLoader(None, ignore_no_migrations=True)
    graph = loader.graph
    plan: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for leaf in sorted(graph.leaf_nodes()):
        for node in graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                plan.append(node)
    found: dict[str, Frozen] = {}
    for app_label, migration_name in plan:
        migration = loader.disk_migrations.get((app_label, migration_name))
        if migration is None:
            continue
        for definition in _defines(migration.operations):
            found[definition.name] = Frozen(f"{app_label}.{migration_name}", definition)
    return found


def drift(live: dict[str, LiveDefinition], migrated: dict[str, Frozen]) -> list[str]:
    """Why the live files and the migrations disagree, one line per problem (empty: they agree)."""
    problems = []
    for name, frozen in sorted(migrated.items()):
        if sha256(frozen.operation.sql) != frozen.operation.sha256:
            problems.append(
                f"{frozen.migration}: the definition of {name} was edited after the migration"
                " was written; shipped migrations never change: restore it and edit the live"
                " file instead"
            )
    for name, definition in sorted(live.items()):
        frozen = migrated.get(name)
        if frozen is None:
            problems.append(f"{definition.path}: new, no migration installs {name}")
        elif frozen.operation.sql != definition.text:
            problems.append(f"{definition.path}: changed since {frozen.migration} froze {name}")
    for name in sorted(set(migrated) - set(live)):
        problems.append(
            f"{name}: installed by {migrated[name].migration} but has no live file; restore"
            f" {file_name(name)} (to drop a function, write the migration by hand)"
        )
    return problems


_MIGRATION = '''"""{doc}

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects.py):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
{dependencies}
    ]

    operations = [
{operations}
    ]
'''


def _q(text: str) -> str:
    """A name as a double-quoted Python string (the style ruff format keeps)."""
    return json.dumps(text)


def _literal(text: str) -> str:
    """``text`` as a raw triple-quoted Python string, byte for byte."""
    for quote in ('"""', "'''"):
        if quote not in text and not text.endswith(quote[0]) and not text.endswith("\\"):
            return f"r{quote}{text}{quote}"
    return repr(text)


def _operation(
    definition: LiveDefinition,
    previous: Frozen | None,
    adopted: bool,
    signatures: tuple[list[str], list[str]] = ([], []),
) -> str:
    lines = [
        "        DefineSQL(",
        f"            name={_q(definition.name)},",
        f"            sha256={_q(sha256(definition.text))},",
    ]
    if previous is not None:
        lines.append(f"            previous={_q(previous.migration)},")
    if adopted:
        lines.append("            adopted=True,")
    for keyword, listed in zip(("dropped", "added"), signatures, strict=True):
        if listed:
            lines.append(f"            {keyword}=[{', '.join(_q(x) for x in listed)}],")
    lines.append(f"            sql={_literal(definition.text)},")
    lines.append("        ),")
    return "\n".join(lines)


class _Undo(Exception):
    """Rolls back a trial run."""


def signatures_of(name: str, text: str) -> list[str]:
    """The signatures (``public.f(bigint,text)``) that ``text`` defines for ``name``: run in
    a transaction that is rolled back, on the configured database (migrated, so that the types
    the definition names exist), after dropping the installed ones."""
    schema, _, short = name.partition(".")
    query = (
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = %s ORDER BY 1"
    )
    found: list[str] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(query, [schema, short])
            for (signature,) in cursor.fetchall():
                cursor.execute(f"DROP FUNCTION {signature} CASCADE")
            for statement in statements(text):
                cursor.execute(statement)
            cursor.execute(query, [schema, short])
            found = [_qualified_signature(schema, row[0]) for row in cursor.fetchall()]
            raise _Undo
    except _Undo:
        pass
    return found


def _qualified_signature(schema: str, signature: str) -> str:
    # regprocedure leaves out a schema on the search path.
    return signature if signature.startswith(f"{schema}.") else f"{schema}.{signature}"


def pending(live: dict[str, LiveDefinition], migrated: dict[str, Frozen]) -> dict[str, list[str]]:
    """The live definitions no migration installs as they are, by owning app."""
    found: dict[str, list[str]] = {}
    for name, definition in sorted(live.items()):
        frozen = migrated.get(name)
        if frozen is None or frozen.operation.sql != definition.text:
            found.setdefault(definition.app, []).append(name)
    return found


def _signature_changes(
    name: str, definition: LiveDefinition, previous: Frozen | None
) -> tuple[list[str], list[str]]:
    if previous is None:
        return [], []
    before = set(signatures_of(name, previous.operation.sql))
    after = set(signatures_of(name, definition.text))
    return sorted(before - after), sorted(after - before)


def write_migrations(
    *,
    fragment: str | None = None,
    adopt: bool = False,
    live: dict[str, LiveDefinition] | None = None,
    migrated: dict[str, Frozen] | None = None,
    folder_for: Callable[[str], Path] | None = None,
) -> list[Path]:
    """Write one migration per app whose live files changed; returns their paths.

    Each depends on the newest migration of every project app, so that what a definition
    reads exists (a SQL-language body is checked when it is created) and its ``previous``
    migration comes before it. ``adopt`` marks first definitions as adopted from the numbered
    SQL files (the baseline; see the module's docstring)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    live = live_definitions() if live is None else live
    migrated = migrated_definitions(loader) if migrated is None else migrated
    leaves = sorted(node for node in loader.graph.leaf_nodes() if node[0] in PROJECT_APPS)
    written = []
    for app_label, names in pending(live, migrated).items():
        own = [node for node in leaves if node[0] == app_label]
        number = int(own[0][1][:4]) + 1 if own else 1
        names_part = fragment or (
            names[0].partition(".")[2] if len(names) == 1 else f"{len(names)}_functions"
        )
        migration_name = f"{number:04d}_{names_part}"
        doc = (
            f"The functions {app_label} owns, adopted from its numbered SQL files."
            if adopt
            else "New definitions of " + ", ".join(names) + "."
        )
        operations = "\n".join(
            _operation(
                live[name],
                migrated.get(name),
                adopt and name not in migrated,
                _signature_changes(name, live[name], migrated.get(name)),
            )
            for name in names
        )
        dependencies = "\n".join(f"        ({_q(a)}, {_q(m)})," for a, m in leaves)
        folder = (
            folder_for(app_label)
            if folder_for
            else Path(apps.get_app_config(app_label).path) / "migrations"
        )
        path = folder / f"{migration_name}.py"
        path.write_text(
            _MIGRATION.format(doc=doc, dependencies=dependencies, operations=operations)
        )
        written.append(path)
    return written
