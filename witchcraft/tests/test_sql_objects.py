"""One live definition per SQL function, trigger, policy and view
(witchcraft/platform/sqlobjects/): the live files are what the migrations install, the check
fails on a stale live file or an edited migration, the writer's migrations apply and reverse,
and a database of the previous main migrates forward to the same objects as a fresh one, and
back."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from witchcraft.operations.backups.servers import configured_server
from witchcraft.platform import sqlobjects
from witchcraft.testing.servers import ROOT, clean_env

# The project's functions (with their grants), policies, triggers, views and materialized
# views, and each table's row-level-security switches and grants: what the live files define.
# Extensions' and procrastinate's objects are theirs.
CATALOG = """
SELECT 'functions', n.nspname || '.' || p.proname, p.oid::regprocedure::text,
       pg_get_functiondef(p.oid), p.proacl::text, NULL
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('public', 'auth', 'monitoring', 'archive')
   AND p.proname NOT LIKE 'procrastinate%%'
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'policies', (CASE WHEN schemaname = 'public' THEN '' ELSE schemaname || '.' END)
       || tablename, policyname, permissive || cmd || roles::text, qual, with_check
  FROM pg_policies
UNION ALL
SELECT 'triggers', t.tgname, t.tgrelid::regclass::text, pg_get_triggerdef(t.oid),
       t.tgenabled::text, NULL
  FROM pg_trigger t
 WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgname NOT LIKE 'procrastinate%%'
UNION ALL
SELECT 'views', 'public.' || viewname, definition, NULL, NULL, NULL
  FROM pg_views WHERE schemaname = 'public'
UNION ALL
SELECT 'views', 'public.' || matviewname, definition, NULL, NULL, NULL
  FROM pg_matviews WHERE schemaname = 'public'
UNION ALL
SELECT 'tables', n.nspname || '.' || c.relname, c.relrowsecurity::text,
       c.relforcerowsecurity::text, c.relacl::text, array_to_string(c.reloptions, ',')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('public', 'archive') AND c.relkind IN ('r', 'p', 'v', 'm')
   AND c.relname NOT LIKE 'procrastinate%%'
 ORDER BY 1, 2, 3
"""
# The migrations of the main before the live files (the numbered SQL files only).
PREVIOUS_MAIN = [
    ("accounts", "0018_audit_compression"),
    ("agents", "0010_sessions_activity_index"),
    ("billing", "0012_monthly_reports"),
    ("usage", "0012_models_of_active_providers"),
    ("witchcraft", "0003_monitoring_windows"),
]


def catalog(cursor) -> list[tuple]:
    cursor.execute(CATALOG)
    return cursor.fetchall()


def test_the_live_files_are_what_the_migrations_install(capsys):
    call_command("sqlmigrations", "--check")
    assert "all installed as they are" in capsys.readouterr().out


@pytest.mark.django_db
def test_every_object_of_the_database_has_one_live_file():
    live = sqlobjects.live_definitions()
    with connection.cursor() as cursor:
        installed = {
            sqlobjects.key(kind, name) for kind, name, *_ in catalog(cursor) if kind != "tables"
        }
    # The policies' key is their table, public tables named bare like the file.
    expected = {
        k if not k.startswith("policies/") else "policies/" + sqlobjects.live.qualified(k[9:])
        for k in installed
    }
    assert expected == set(live)
    kinds = {k.partition("/")[0] for k in live}
    assert kinds == {"functions", "policies", "triggers", "views"}
    # Each in the folder of the app that owns it, named after it.
    for definition in live.values():
        assert definition.path.name == sqlobjects.live.file_name(definition.name)
        assert definition.path.parent == Path(ROOT, definition.app, "sql", definition.kind)


class _Undo(Exception):
    pass


@pytest.mark.django_db
def test_running_a_live_file_changes_nothing_in_the_migrated_database():
    """Proof that the database holds the live definitions: running each file again leaves
    every function, grant, policy, trigger and view as it was. A materialized view cannot be
    replaced, so its file runs beside it under another name and the definitions are compared."""
    live = sqlobjects.live_definitions()
    with connection.cursor() as cursor:
        before = catalog(cursor)
        for definition in live.values():
            if sqlobjects.live.is_materialized(definition.text):
                continue
            for statement in sqlobjects.statements(definition.text):
                cursor.execute(statement)
        assert catalog(cursor) == before
    (stats,) = [d for d in live.values() if sqlobjects.live.is_materialized(d.text)]
    with pytest.raises(_Undo), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER MATERIALIZED VIEW {stats.name} RENAME TO installed_copy")
        cursor.execute(
            "ALTER INDEX public.agent_session_stats_session_id RENAME TO installed_copy_id"
        )
        for statement in sqlobjects.statements(stats.text):
            cursor.execute(statement)
        cursor.execute(
            "SELECT matviewname, definition FROM pg_matviews"
            " WHERE matviewname IN ('installed_copy', 'agent_session_stats') ORDER BY 1"
        )
        (_, new), (_, installed) = cursor.fetchall()
        assert new == installed
        raise _Undo


def _edited(definition: sqlobjects.LiveDefinition) -> sqlobjects.LiveDefinition:
    return dataclasses.replace(definition, text="-- edited\n" + definition.text)


@pytest.mark.parametrize(
    "object_key",
    ["functions/public.record_ai_usage", "policies/public.users", "triggers/users_guard_changes"],
)
def test_a_live_file_edited_without_a_migration_fails_the_check(object_key):
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    assert sqlobjects.drift(live, migrated) == []
    live[object_key] = _edited(live[object_key])
    problems = sqlobjects.drift(live, migrated)
    assert problems == [
        f"{live[object_key].path}: changed since {migrated[object_key].migration}"
        f" froze {object_key}"
    ]
    assert sqlobjects.pending(live, migrated) == {live[object_key].app: [object_key]}


def test_a_migration_edited_after_it_was_written_fails_the_check():
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    frozen = migrated["functions/auth.user_id"]
    operation = sqlobjects.DefineSQL(
        name=frozen.operation.name,
        sql=frozen.operation.sql.replace("nullif", "NULLIF"),
        sha256=frozen.operation.sha256,
        adopted=True,
    )
    migrated["functions/auth.user_id"] = sqlobjects.Frozen(frozen.migration, operation)
    # Also edited in the live file to match: the check still sees the migration's edit.
    live["functions/auth.user_id"] = dataclasses.replace(
        live["functions/auth.user_id"], text=operation.sql
    )
    assert sqlobjects.drift(live, migrated) == [
        f"{frozen.migration}: the definition of functions/auth.user_id was edited after the"
        " migration was written; shipped migrations never change: restore it and edit the live"
        " file instead"
    ]


def test_a_new_live_file_or_a_lost_one_fails_the_check():
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    lost = live.pop("policies/public.users")
    assert sqlobjects.drift(live, migrated) == [
        "policies/public.users: installed by accounts.0020_sql_baseline but has no live file;"
        " restore policies/users.sql (to drop it, write the migration by hand)"
    ]
    live["policies/public.users"] = lost
    del migrated["policies/public.users"]
    assert sqlobjects.drift(live, migrated) == [
        f"{lost.path}: new, no migration installs policies/public.users"
    ]


@pytest.mark.parametrize(
    ("folder", "file", "text", "message"),
    [
        (
            "functions",
            "user_id.sql",
            "CREATE OR REPLACE FUNCTION auth.user_id() RETURNS bigint AS $$ $$;",
            "named after and nothing else",
        ),
        (
            "policies",
            "users.sql",
            "DROP POLICY IF EXISTS p ON public.users;\n"
            "CREATE POLICY p ON public.users USING (true);\n"
            "DROP TABLE public.users;",
            "not about it: DROP TABLE",
        ),
        (
            "policies",
            "users.sql",
            "CREATE POLICY p ON public.users USING (true);",
            "after DROP POLICY IF EXISTS",
        ),
        ("triggers", "t.sql", "ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;", "not about"),
        ("views", "v.sql", "GRANT SELECT ON public.v TO witchcraft_app;", "does not create"),
    ],
)
def test_a_live_file_holds_only_its_object(tmp_path, folder, file, text, message):
    path = tmp_path / file
    path.write_text(text)
    with pytest.raises(sqlobjects.SqlObjectError, match=re.escape(message)):
        sqlobjects.read_live(path, "witchcraft", folder)


def test_a_live_file_of_each_kind_is_read_by_its_name(tmp_path):
    (tmp_path / "auth.user_id.sql").write_text(
        "CREATE OR REPLACE FUNCTION auth.user_id() RETURNS bigint AS $$ $$;"
    )
    assert sqlobjects.read_live(tmp_path / "auth.user_id.sql", "witchcraft").name == (
        "auth.user_id"
    )
    live = sqlobjects.live_definitions()
    assert live["triggers/users_guard_changes"].app == "accounts"
    assert live["views/public.agent_session_stats_visible"].app == "agents"
    assert live["policies/archive.ai_usage_requests"].app == "usage"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"written_{secrets.token_hex(4)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Migration


def _apply(operation, *, backwards: bool = False) -> None:
    with connection.schema_editor(atomic=False) as editor:
        if backwards:
            operation.database_backwards("witchcraft", editor, None, None)
        else:
            operation.database_forwards("witchcraft", editor, None, None)


@pytest.mark.django_db
def test_the_written_migration_installs_the_live_file_and_reverses_to_the_frozen_one(tmp_path):
    """What ``manage.py sqlmigrations`` writes for a changed live file: a frozen copy that
    applies, and reverses to the definition the previous migration froze."""
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    changed = dataclasses.replace(
        live["functions/auth.is_admin"],
        text=live["functions/auth.is_admin"].text.replace("$$", "$$ ", 1),
    )
    live["functions/auth.is_admin"] = changed
    written = sqlobjects.write_migrations(
        live=live, migrated=migrated, folder_for=lambda app: tmp_path
    )
    # Numbered after witchcraft's newest migration, named after the one function it defines.
    leaves = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes()
    (newest,) = (name for app, name in leaves if app == "witchcraft")
    assert [path.name for path in written] == [f"{int(newest[:4]) + 1:04d}_is_admin.py"]
    migration = _load(written[0])
    (operation,) = migration.operations
    previous = migrated["functions/auth.is_admin"].migration
    assert (operation.name, operation.kind, operation.previous) == (
        "auth.is_admin",
        "functions",
        previous,
    )
    assert operation.sql == changed.text
    assert operation.sha256 == sqlobjects.sha256(changed.text)
    assert (operation.drop_first, operation.drop_on_reverse) == ([], [])
    # After the newest migration of every project app (the previous one among their ancestors).
    assert sorted(migration.dependencies) == sorted(
        node for node in leaves if node[0] in sqlobjects.live.PROJECT_APPS
    )

    def body() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc WHERE oid = 'auth.is_admin()'::regprocedure")
            return cursor.fetchone()[0]

    installed = body()
    _apply(operation)
    assert body() == " " + installed
    _apply(operation, backwards=True)
    assert body() == installed


@pytest.mark.django_db
def test_a_policy_taken_out_of_a_file_is_dropped_and_comes_back_when_reversed(tmp_path):
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    users = live["policies/public.users"]
    statements = sqlobjects.statements(users.text)
    kept = [s for s in statements if "users_select_actor" not in s]
    live["policies/public.users"] = dataclasses.replace(users, text="\n".join(kept) + "\n")
    (path,) = sqlobjects.write_migrations(
        live=live, migrated=migrated, folder_for=lambda app: tmp_path
    )
    (operation,) = _load(path).operations
    assert operation.kind == "policies"
    assert operation.drop_first == ["DROP POLICY IF EXISTS users_select_actor ON public.users"]
    assert operation.drop_on_reverse == []

    def policies() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT policyname FROM pg_policies WHERE tablename = 'users'")
            return sorted(row[0] for row in cursor.fetchall())

    installed = policies()
    _apply(operation)
    assert policies() == [p for p in installed if p != "users_select_actor"]
    _apply(operation, backwards=True)
    assert policies() == installed


@pytest.mark.django_db
def test_a_new_object_reverses_to_nothing(tmp_path):
    text = (
        "CREATE OR REPLACE FUNCTION public.sqlobjects_probe(p integer) RETURNS int"
        " LANGUAGE sql AS $$ SELECT p $$;\n"
    )
    probe = tmp_path / "sqlobjects_probe.sql"
    probe.write_text(text)
    live = sqlobjects.live_definitions() | {
        "functions/public.sqlobjects_probe": sqlobjects.read_live(probe, "witchcraft")
    }
    (path,) = sqlobjects.write_migrations(
        live=live, migrated=sqlobjects.migrated_definitions(), folder_for=lambda app: tmp_path
    )
    (operation,) = _load(path).operations
    assert operation.drop_on_reverse == ["DROP FUNCTION IF EXISTS public.sqlobjects_probe(integer)"]
    _apply(operation)
    _apply(operation, backwards=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regproc('public.sqlobjects_probe')")
        assert cursor.fetchone() == (None,)


def test_a_name_must_be_an_identifier_of_its_kind():
    with pytest.raises(sqlobjects.SqlObjectError):
        sqlobjects.DefineSQL(name="public.x'; DROP TABLE users; --", sql="", sha256="")
    with pytest.raises(sqlobjects.SqlObjectError):
        sqlobjects.DefineSQL(name="record_ai_usage", sql="", sha256="")
    with pytest.raises(sqlobjects.SqlObjectError):
        sqlobjects.DefineSQL(name="public.users", sql="", sha256="", kind="tables")
    assert sqlobjects.DefineSQL(name="t", sql="", sha256="", kind="triggers").key == "triggers/t"


def test_the_check_command_fails_with_the_problems(monkeypatch):
    live = sqlobjects.live_definitions()
    edited = _edited(live["functions/public.record_ai_usage"])
    monkeypatch.setattr(
        sqlobjects,
        "live_definitions",
        lambda: live | {"functions/public.record_ai_usage": edited},
    )
    with pytest.raises(CommandError, match=re.escape("record_ai_usage.sql: changed since usage")):
        call_command("sqlmigrations", "--check")


def _url(server, dbname: str) -> str:
    params = server.params
    host = quote(str(params.get("host", "")), safe="")
    return f"postgres://{quote(params.get('user', ''))}@{host}:{params.get('port', 5432)}/{dbname}"


def _migrate(url: str, *target: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", *target, "--verbosity", "0"],
        cwd=ROOT,
        env=clean_env(DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db
def test_a_database_of_the_previous_main_migrates_forward_to_the_same_objects_and_back():
    server = configured_server()
    if server.password:
        pytest.fail("this test builds a DATABASE_URL without a password: use a trust server")
    name = f"wc_test_upgrade_{secrets.token_hex(4)}"
    with server.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _url(server, name)

        def objects() -> list[tuple]:
            with server.connect(name) as upgraded, upgraded.cursor() as cursor:
                cursor.execute(CATALOG.replace("%%", "%"))
                return cursor.fetchall()

        for app, migration in PREVIOUS_MAIN:
            _migrate(url, app, migration)
        before = objects()
        _migrate(url)
        with connection.cursor() as cursor:
            assert objects() == catalog(cursor)
        # And back: every migration since reverses to the definitions before it (a changed
        # signature included: record_ai_usage gained p_error_message).
        for app, migration in PREVIOUS_MAIN:
            _migrate(url, app, migration)
        assert objects() == before
    finally:
        with server.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
