"""``manage.py sqlmigrations``: the migration of each app whose live files changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from django.apps import apps
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader

from witchcraft.platform.sqlobjects.history import Frozen, migrated_definitions
from witchcraft.platform.sqlobjects.live import (
    PROJECT_APPS,
    LiveDefinition,
    SqlObjectError,
    is_materialized,
    live_definitions,
    policy_names,
    sha256,
    statements,
    trigger_table,
)

_MIGRATION = '''"""{doc}

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
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


class _Undo(Exception):
    """Rolls back a trial run."""


def signatures_of(name: str, text: str) -> list[str]:
    """The signatures (``public.f(bigint,text)``) that ``text`` defines for the function
    ``name``: tried in a transaction that is rolled back, on the configured database (migrated,
    so that the types the definition names exist), after dropping the installed ones."""
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
            # regprocedure leaves out a schema on the search path.
            found = [
                row[0] if row[0].startswith(f"{schema}.") else f"{schema}.{row[0]}"
                for row in cursor.fetchall()
            ]
            raise _Undo
    except _Undo:
        pass
    return found


def _drops(definition: LiveDefinition, text: str) -> list[str]:
    """The statements that drop what ``text`` (a definition of ``definition``'s object)
    creates."""
    name = definition.name
    if definition.kind == "functions":
        return [f"DROP FUNCTION IF EXISTS {s}" for s in signatures_of(name, text)]
    if definition.kind == "triggers":
        return [f"DROP TRIGGER IF EXISTS {name} ON {trigger_table(text)}"]
    if definition.kind == "policies":
        return [f"DROP POLICY IF EXISTS {p} ON {name}" for p in sorted(policy_names(text))]
    materialized = "MATERIALIZED " if is_materialized(text) else ""
    return [f"DROP {materialized}VIEW IF EXISTS {name}"]


def _reversal(definition: LiveDefinition, previous: Frozen | None) -> tuple[list[str], list[str]]:
    """(drop_first, drop_on_reverse) of a new definition of ``definition``'s object."""
    new = _drops(definition, definition.text)
    if previous is None:
        return [], new
    if definition.kind == "views" and is_materialized(definition.text):
        raise SqlObjectError(
            f"{definition.path}: a materialized view cannot be replaced in place (views and"
            " functions depend on it); write its migration by hand"
        )
    old = _drops(definition, previous.operation.sql)
    return [s for s in old if s not in new], [s for s in new if s not in old]


def _operation(definition: LiveDefinition, previous: Frozen | None, adopted: bool) -> str:
    lines = [
        "        DefineSQL(",
        f"            name={_q(definition.name)},",
        f"            sha256={_q(sha256(definition.text))},",
    ]
    if definition.kind != "functions":
        lines.append(f"            kind={_q(definition.kind)},")
    if previous is not None:
        lines.append(f"            previous={_q(previous.migration)},")
    if adopted:
        lines.append("            adopted=True,")
    else:
        drop_first, drop_on_reverse = _reversal(definition, previous)
        for keyword, listed in (("drop_first", drop_first), ("drop_on_reverse", drop_on_reverse)):
            if listed:
                lines.append(f"            {keyword}=[")
                lines.extend(f"                {_q(statement)}," for statement in listed)
                lines.append("            ],")
    lines.append(f"            sql={_literal(definition.text)},")
    lines.append("        ),")
    return "\n".join(lines)


def pending(live: dict[str, LiveDefinition], migrated: dict[str, Frozen]) -> dict[str, list[str]]:
    """The keys of the live definitions no migration installs as they are, by owning app."""
    found: dict[str, list[str]] = {}
    for object_key, definition in sorted(live.items()):
        frozen = migrated.get(object_key)
        if frozen is None or frozen.operation.sql != definition.text:
            found.setdefault(definition.app, []).append(object_key)
    return found


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
    SQL files (the baselines; see the package's docstring)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    live = live_definitions() if live is None else live
    migrated = migrated_definitions(loader) if migrated is None else migrated
    leaves = sorted(node for node in loader.graph.leaf_nodes() if node[0] in PROJECT_APPS)
    written = []
    for app_label, keys in pending(live, migrated).items():
        own = [node for node in leaves if node[0] == app_label]
        number = int(own[0][1][:4]) + 1 if own else 1
        names = [live[k].name for k in keys]
        name_part = fragment or (
            names[0].rpartition(".")[2] if len(names) == 1 else f"{len(names)}_definitions"
        )
        doc = (
            f"The SQL objects {app_label} owns, adopted from its numbered SQL files."
            if adopt
            else "New definitions of " + ", ".join(keys) + "."
        )
        operations = "\n".join(
            _operation(live[k], migrated.get(k), adopt and k not in migrated) for k in keys
        )
        dependencies = "\n".join(f"        ({_q(a)}, {_q(m)})," for a, m in leaves)
        folder = (
            folder_for(app_label)
            if folder_for
            else Path(apps.get_app_config(app_label).path) / "migrations"
        )
        path = folder / f"{number:04d}_{name_part}.py"
        path.write_text(
            _MIGRATION.format(doc=doc, dependencies=dependencies, operations=operations)
        )
        written.append(path)
    return written
