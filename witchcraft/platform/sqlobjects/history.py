"""The migrations' side: the operation that installs a frozen definition, what the migrations
on disk install, and how that differs from the live files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import migrations
from django.db.migrations.loader import MigrationLoader

from witchcraft.platform.sqlobjects.live import (
    KINDS,
    NAME,
    LiveDefinition,
    SqlObjectError,
    file_name,
    key,
    sha256,
    statements,
)


class DefineSQL(migrations.operations.base.Operation):
    """Install the frozen ``sql`` of one object of ``kind`` (a folder of :data:`KINDS`).

    Going forward, ``drop_first`` runs before it: what the previous definition had and this one
    has not (a function's old signature, since CREATE OR REPLACE with other arguments makes a
    second function; a policy taken out of the table's file). Going back, the definition the
    migration ``previous`` (``"app.0012_x"``) froze runs again, then ``drop_on_reverse``: what
    only this one has (all of it for a new object). A definition ``adopted`` from the numbered
    SQL files reverses to nothing: the migrations before it own what was there."""

    reduces_to_sql = True
    reversible = True

    def __init__(
        self,
        name: str,
        sql: str,
        sha256: str,
        kind: str = "functions",
        previous: str | None = None,
        adopted: bool = False,
        drop_first: Sequence[str] = (),
        drop_on_reverse: Sequence[str] = (),
    ) -> None:
        if kind not in KINDS:
            raise SqlObjectError(f"{kind!r} is not one of {', '.join(KINDS)}")
        if not NAME.fullmatch(name) or (KINDS[kind].qualify and "." not in name):
            raise SqlObjectError(f"{name!r} is not a name of a {KINDS[kind].noun}")
        self.name = name
        self.sql = sql
        self.sha256 = sha256
        self.kind = kind
        self.previous = previous
        self.adopted = adopted
        self.drop_first = list(drop_first)
        self.drop_on_reverse = list(drop_on_reverse)

    @property
    def key(self) -> str:
        return key(self.kind, self.name)

    def deconstruct(self):
        kwargs = {"name": self.name, "sql": self.sql, "sha256": self.sha256}
        optional = {
            "kind": self.kind if self.kind != "functions" else None,
            "previous": self.previous,
            "adopted": self.adopted or None,
            "drop_first": self.drop_first or None,
            "drop_on_reverse": self.drop_on_reverse or None,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return (self.__class__.__name__, [], kwargs)

    def state_forwards(self, app_label, state) -> None:
        """Functions, triggers, policies and views are not part of Django's model state."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        for statement in [*self.drop_first, *statements(self.sql)]:
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if self.adopted:
            return
        before = frozen_definition(self.previous, self.key).sql if self.previous else ""
        for statement in [*statements(before), *self.drop_on_reverse]:
            schema_editor.execute(statement, params=None)

    def describe(self) -> str:
        return f"Define {KINDS[self.kind].noun} {self.name}"

    @property
    def migration_name_fragment(self) -> str:
        return self.name.rpartition(".")[2]


def _defines(operations) -> Iterable[DefineSQL]:
    for operation in operations:
        if isinstance(operation, DefineSQL):
            yield operation
        elif isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _defines(operation.database_operations)


def frozen_definition(migration: str, object_key: str) -> DefineSQL:
    """The DefineSQL of ``object_key`` in ``migration`` (``"app.0012_x"``), read from disk."""
    app_label, _, migration_name = migration.partition(".")
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for definition in _defines(loader.get_migration(app_label, migration_name).operations):
        if definition.key == object_key:
            return definition
    raise SqlObjectError(f"{migration} does not define {object_key}")


@dataclass(frozen=True)
class Frozen:
    """The last definition of an object the migrations install, and where it is."""

    migration: str
    operation: DefineSQL


def migrated_definitions(loader: MigrationLoader | None = None) -> dict[str, Frozen]:
    """What the migrations on disk install, by key: the last DefineSQL in migration order
    (the order ``migrate`` applies them in)."""
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
            found[definition.key] = Frozen(f"{app_label}.{migration_name}", definition)
    return found


def drift(live: dict[str, LiveDefinition], migrated: dict[str, Frozen]) -> list[str]:
    """Why the live files and the migrations disagree, one line per problem (empty: they agree)."""
    problems = []
    for object_key, frozen in sorted(migrated.items()):
        if sha256(frozen.operation.sql) != frozen.operation.sha256:
            problems.append(
                f"{frozen.migration}: the definition of {object_key} was edited after the"
                " migration was written; shipped migrations never change: restore it and edit"
                " the live file instead"
            )
    for object_key, definition in sorted(live.items()):
        frozen = migrated.get(object_key)
        if frozen is None:
            problems.append(f"{definition.path}: new, no migration installs {object_key}")
        elif frozen.operation.sql != definition.text:
            problems.append(
                f"{definition.path}: changed since {frozen.migration} froze {object_key}"
            )
    for object_key in sorted(set(migrated) - set(live)):
        kind, _, name = object_key.partition("/")
        problems.append(
            f"{object_key}: installed by {migrated[object_key].migration} but has no live file;"
            f" restore {kind}/{file_name(name)} (to drop it, write the migration by hand)"
        )
    return problems
