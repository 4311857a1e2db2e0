"""One live definition per SQL function (witchcraft/platform/sqlobjects.py): the live files are
what the migrations install, the check fails on a stale live file or an edited migration, the
writer's migrations apply and reverse, and a database of the previous main migrates forward to
the same functions as a fresh one, and back."""

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
from django.db import connection
from psycopg import sql

from witchcraft.backups.servers import configured_server
from witchcraft.platform import sqlobjects
from witchcraft.testing.servers import ROOT, clean_env

# Every function of the project's schemas, with its grants (extensions' and procrastinate's
# functions are theirs).
CATALOG = """
SELECT n.nspname || '.' || p.proname, p.oid::regprocedure::text, pg_get_functiondef(p.oid),
       p.proacl::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('public', 'auth', 'monitoring', 'archive')
   AND p.proname NOT LIKE 'procrastinate%%'
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
 ORDER BY 2
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
def test_every_function_of_the_database_has_one_live_file():
    live = sqlobjects.live_definitions()
    with connection.cursor() as cursor:
        installed = {row[0] for row in catalog(cursor)}
    assert installed == set(live)
    # Each in the folder of the app that owns it, named after it.
    for name, definition in live.items():
        assert definition.path.name == sqlobjects.file_name(name)
        assert definition.path.parent == Path(ROOT, definition.app, "sql", "functions")


@pytest.mark.django_db
def test_running_a_live_file_changes_nothing_in_the_migrated_database():
    """Byte-for-byte proof that the database holds the live definitions: running each file
    again leaves every function's definition and grants as they were."""
    with connection.cursor() as cursor:
        before = catalog(cursor)
        for definition in sqlobjects.live_definitions().values():
            for statement in sqlobjects.statements(definition.text):
                cursor.execute(statement)
        assert catalog(cursor) == before


def _edited(definition: sqlobjects.LiveDefinition) -> sqlobjects.LiveDefinition:
    return dataclasses.replace(definition, text=definition.text.replace("$$", "$$ ", 1))


def test_a_live_file_edited_without_a_migration_fails_the_check():
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    assert sqlobjects.drift(live, migrated) == []
    live["public.record_ai_usage"] = _edited(live["public.record_ai_usage"])
    problems = sqlobjects.drift(live, migrated)
    assert len(problems) == 1
    assert "usage/sql/functions/record_ai_usage.sql: changed since usage." in problems[0]
    assert sqlobjects.pending(live, migrated) == {"usage": ["public.record_ai_usage"]}


def test_a_migration_edited_after_it_was_written_fails_the_check():
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    frozen = migrated["auth.user_id"]
    operation = sqlobjects.DefineSQL(
        name=frozen.operation.name,
        sql=frozen.operation.sql.replace("nullif", "NULLIF"),
        sha256=frozen.operation.sha256,
        adopted=True,
    )
    migrated["auth.user_id"] = sqlobjects.Frozen(frozen.migration, operation)
    # Also edited in the live file to match: the check still sees the migration's edit.
    live["auth.user_id"] = dataclasses.replace(live["auth.user_id"], text=operation.sql)
    assert sqlobjects.drift(live, migrated) == [
        f"{frozen.migration}: the definition of auth.user_id was edited after the migration was"
        " written; shipped migrations never change: restore it and edit the live file instead"
    ]


def test_a_new_live_file_or_a_lost_one_fails_the_check():
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    lost = live.pop("public.write_audit_log")
    problems = sqlobjects.drift(live, migrated)
    assert problems == [
        "public.write_audit_log: installed by accounts.0019_functions but has no live file;"
        " restore write_audit_log.sql (to drop a function, write the migration by hand)"
    ]
    live["public.write_audit_log"] = lost
    del migrated["public.write_audit_log"]
    assert sqlobjects.drift(live, migrated) == [
        f"{lost.path}: new, no migration installs public.write_audit_log"
    ]


def test_a_live_file_defines_the_function_it_is_named_after(tmp_path):
    wrong = tmp_path / "user_id.sql"
    wrong.write_text("CREATE OR REPLACE FUNCTION auth.user_id() RETURNS bigint AS $$ $$;")
    with pytest.raises(sqlobjects.SqlObjectError, match="named after and nothing else"):
        sqlobjects.read_live(wrong, "witchcraft")
    right = tmp_path / "auth.user_id.sql"
    right.write_text(wrong.read_text())
    assert sqlobjects.read_live(right, "witchcraft").name == "auth.user_id"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"written_{secrets.token_hex(4)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Migration


@pytest.mark.django_db
def test_the_written_migration_installs_the_live_file_and_reverses_to_the_frozen_one(tmp_path):
    """What ``manage.py sqlmigrations`` writes for a changed live file: a frozen copy that
    applies, and reverses to the definition the previous migration froze."""
    live = sqlobjects.live_definitions()
    migrated = sqlobjects.migrated_definitions()
    changed = _edited(live["auth.is_admin"])
    live["auth.is_admin"] = changed
    written = sqlobjects.write_migrations(
        live=live, migrated=migrated, folder_for=lambda app: tmp_path
    )
    assert [path.parent for path in written] == [tmp_path]
    assert written[0].name == "0005_is_admin.py"
    migration = _load(written[0])
    (operation,) = migration.operations
    assert operation.name == "auth.is_admin"
    assert operation.sql == changed.text
    assert operation.sha256 == sqlobjects.sha256(changed.text)
    assert operation.previous == migrated["auth.is_admin"].migration
    assert ("witchcraft", migrated["auth.is_admin"].migration.partition(".")[2]) in (
        migration.dependencies
    )

    def definition() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc WHERE oid = 'auth.is_admin()'::regprocedure")
            return cursor.fetchone()[0]

    installed = definition()
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("witchcraft", editor, None, None)
    assert definition() == " " + installed
    with connection.schema_editor(atomic=False) as editor:
        operation.database_backwards("witchcraft", editor, None, None)
    assert definition() == installed


@pytest.mark.django_db
def test_a_new_function_reverses_to_nothing(tmp_path):
    operation = sqlobjects.DefineSQL(
        name="public.sqlobjects_probe",
        sql="CREATE OR REPLACE FUNCTION public.sqlobjects_probe() RETURNS int"
        " LANGUAGE sql AS $$ SELECT 1 $$;",
        sha256="",
    )
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("witchcraft", editor, None, None)
        operation.database_backwards("witchcraft", editor, None, None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regproc('public.sqlobjects_probe')")
        assert cursor.fetchone() == (None,)


def test_a_function_name_must_be_schema_qualified_identifiers():
    with pytest.raises(sqlobjects.SqlObjectError):
        sqlobjects.DefineSQL(name="public.x'; DROP TABLE users; --", sql="", sha256="")
    with pytest.raises(sqlobjects.SqlObjectError):
        sqlobjects.DefineSQL(name="record_ai_usage", sql="", sha256="")


def test_the_check_command_fails_with_the_problems(tmp_path, settings, monkeypatch):
    live = sqlobjects.live_definitions()
    edited = _edited(live["public.record_ai_usage"])
    monkeypatch.setattr(
        sqlobjects, "live_definitions", lambda: live | {"public.record_ai_usage": edited}
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
def test_a_database_of_the_previous_main_migrates_forward_to_the_same_functions_and_back():
    server = configured_server()
    if server.password:
        pytest.fail("this test builds a DATABASE_URL without a password: use a trust server")
    name = f"wc_test_upgrade_{secrets.token_hex(4)}"
    with server.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _url(server, name)

        def functions() -> list[tuple]:
            with server.connect(name) as upgraded, upgraded.cursor() as cursor:
                cursor.execute(CATALOG.replace("%%", "%"))
                return cursor.fetchall()

        for app, migration in PREVIOUS_MAIN:
            _migrate(url, app, migration)
        before = functions()
        _migrate(url)
        with connection.cursor() as cursor:
            assert functions() == catalog(cursor)
        # And back: every migration since reverses to the definitions before it (a changed
        # signature included: record_ai_usage gained p_error_message).
        for app, migration in PREVIOUS_MAIN:
            _migrate(url, app, migration)
        assert functions() == before
    finally:
        with server.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
