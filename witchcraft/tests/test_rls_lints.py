"""Lints over the live schema, in the spirit of Supabase's database linter.

Each test reads the catalogs of the migrated test database, so a table, policy, view or
function added later (by any app) is checked without editing this file. A failure names every
offending object.
"""

import pytest
from django.db import connection

from witchcraft.platform.rls import APP_ROLE

pytestmark = pytest.mark.django_db

SCHEMAS = ["public", "auth", "archive"]

# Django's own tables: no user data the runtime role could leak (sessions are keyed by secret
# random keys). procrastinate's job queue: jobs, not user data, and the runtime role has no
# grant on them at all (test below). Everything else must have row-level security enabled and
# forced.
QUEUE_TABLES = [
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
]
FRAMEWORK_TABLES = [
    "django_migrations",
    "django_content_type",
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
    "django_session",
    *QUEUE_TABLES,
]


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _report(offenders, rule: str) -> str:
    return f"{rule}:\n" + "\n".join(f"  {' '.join(map(str, row))}" for row in offenders)


def test_every_table_has_row_level_security_enabled_and_forced():
    tables = _rows(
        """
        SELECT c.oid::regclass::text, c.relkind, c.relispartition, c.relrowsecurity,
               c.relforcerowsecurity
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p')
           AND c.relname <> ALL (%s)
         ORDER BY 1
        """,
        [SCHEMAS, FRAMEWORK_TABLES],
    )
    names = {row[0] for row in tables}
    # The lint really sees user tables, partitioned tables and their partitions.
    assert {"users", "ai_usage_requests", "ai_usage_requests_default"} <= names
    offenders = [
        (name, f"relkind={kind}", f"enabled={rls}", f"forced={forced}")
        for name, kind, _, rls, forced in tables
        if not (rls and forced)
    ]
    assert not offenders, _report(offenders, "tables without RLS enabled AND forced")


def test_the_runtime_role_has_no_privilege_on_the_job_queue():
    """Jobs are deferred after commit as the owner (witchcraft.platform.deferred) and run by the
    worker as the owner; staff read the queue's state through monitoring_job_queue()."""
    rows = _rows(
        """
        SELECT t, EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'public' AND c.relname = t),
               has_table_privilege(%s, 'public.' || t,
                                   'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
          FROM unnest(%s::text[]) t
        """,
        [APP_ROLE, QUEUE_TABLES],
    )
    assert all(exists for _, exists, _ in rows), rows
    offenders = [(table, "granted") for table, _, granted in rows if granted]
    assert not offenders, _report(offenders, f"job queue tables {APP_ROLE} has privileges on")


def test_no_write_policy_is_unconditionally_true():
    offenders = _rows(
        """
        SELECT schemaname || '.' || tablename, policyname, cmd, qual, with_check
          FROM pg_policies
         WHERE cmd IN ('INSERT', 'UPDATE', 'DELETE', 'ALL')
           AND (regexp_replace(coalesce(qual, ''), '[\\s()]', '', 'g') = 'true'
                OR regexp_replace(coalesce(with_check, ''), '[\\s()]', '', 'g') = 'true')
        """
    )
    assert not offenders, _report(offenders, "write policies that are USING/WITH CHECK (true)")


def _security_definer_functions() -> list[tuple[str, list[str] | None]]:
    return _rows(
        """
        SELECT p.oid::regprocedure::text, p.proconfig
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ANY (%s) AND p.prosecdef
         ORDER BY 1
        """,
        [SCHEMAS],
    )


def _search_path(config: list[str] | None) -> list[str] | None:
    for item in config or []:
        if item.startswith("search_path="):
            value = item.removeprefix("search_path=")
            return [part.strip().strip('"') for part in value.split(",")]
    return None


def test_every_security_definer_function_pins_its_search_path():
    functions = _security_definer_functions()
    assert any(name.startswith("write_audit_log(") for name, _ in functions)
    offenders = [(name, config) for name, config in functions if _search_path(config) is None]
    assert not offenders, _report(offenders, "SECURITY DEFINER functions without SET search_path")


def test_security_definer_functions_cannot_be_steered_by_temporary_tables():
    """pg_temp is searched first for tables unless the search_path lists it (last).

    The runtime role may create temporary tables (PUBLIC has TEMPORARY on a new database), so
    a SECURITY DEFINER function naming a table unqualified, e.g. write_audit_log's
    ``INSERT INTO audit_logs``, writes into the caller's ``pg_temp.audit_logs`` instead. Either
    the runtime role cannot create temporary tables, or every pinned search_path ends with
    pg_temp (PostgreSQL docs, "Writing SECURITY DEFINER Functions Safely").
    """
    (may_create_temp,) = _rows(
        "SELECT has_database_privilege(%s, current_database(), 'TEMPORARY')", [APP_ROLE]
    )[0]
    if not may_create_temp:
        return
    offenders = [
        (name, config)
        for name, config in _security_definer_functions()
        if (_search_path(config) or [""])[-1] != "pg_temp"
    ]
    assert not offenders, _report(
        offenders,
        f"{APP_ROLE} may create temporary tables, and these SECURITY DEFINER functions do not"
        " list pg_temp last in their search_path",
    )


def test_public_cannot_execute_security_definer_functions():
    # A NULL proacl means the default, which lets PUBLIC execute: acldefault() spells it out.
    offenders = _rows(
        """
        SELECT p.oid::regprocedure::text
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ANY (%s) AND p.prosecdef
           AND EXISTS (
               SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
                WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE')
         ORDER BY 1
        """,
        [SCHEMAS],
    )
    assert not offenders, _report(offenders, "SECURITY DEFINER functions executable by PUBLIC")


def test_every_view_is_security_invoker():
    views = _rows(
        """
        SELECT c.oid::regclass::text, c.reloptions
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%s) AND c.relkind = 'v'
         ORDER BY 1
        """,
        [SCHEMAS],
    )
    invoker = {f"security_invoker={value}" for value in ("true", "on", "yes", "1")}
    offenders = [
        (name, options)
        for name, options in views
        if not invoker & {option.lower() for option in options or []}
    ]
    assert not offenders, _report(offenders, "views not created WITH (security_invoker = true)")


def test_materialized_views_grant_nothing_to_the_runtime_role_or_public():
    views = _rows(
        """
        SELECT c.oid::regclass::text,
               has_table_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE,
                                               REFERENCES, TRIGGER'),
               EXISTS (SELECT FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) acl
                        WHERE acl.grantee = 0)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%s) AND c.relkind = 'm'
         ORDER BY 1
        """,
        [APP_ROLE, SCHEMAS],
    )
    assert "agent_session_stats" in {name for name, *_ in views}
    offenders = [
        (name, f"{APP_ROLE}={granted}", f"PUBLIC={public}")
        for name, granted, public in views
        if granted or public
    ]
    assert not offenders, _report(offenders, "materialized views (no RLS) readable by the app")


def test_partitions_grant_nothing_to_the_runtime_role():
    """A partition queried directly skips its parent's policies: only the parent is granted."""
    partitions = _rows(
        """
        SELECT c.oid::regclass::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%s) AND c.relispartition AND c.relkind IN ('r', 'p')
           AND has_table_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE,
                                               REFERENCES, TRIGGER')
         ORDER BY 1
        """,
        [SCHEMAS, APP_ROLE],
    )
    assert not partitions, _report(partitions, f"partitions {APP_ROLE} has privileges on")


def test_the_runtime_role_holds_no_privilege_that_bypasses_policies():
    """TRUNCATE empties a table without looking at policies; TRIGGER and REFERENCES are DDL."""
    offenders = _rows(
        """
        SELECT c.oid::regclass::text, priv
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
               unnest(ARRAY['TRUNCATE', 'TRIGGER', 'REFERENCES']) priv
         WHERE n.nspname = ANY (%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND has_table_privilege(%s, c.oid, priv)
         ORDER BY 1, 2
        """,
        [SCHEMAS, APP_ROLE],
    )
    assert not offenders, _report(offenders, f"dangerous table privileges of {APP_ROLE}")


def test_the_runtime_role_is_unprivileged():
    rows = _rows(
        """
        SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication
          FROM pg_roles WHERE rolname = %s
        """,
        [APP_ROLE],
    )
    assert rows, f"role {APP_ROLE} is missing"
    flags = dict(
        zip(
            ["superuser", "bypassrls", "login", "createrole", "createdb", "replication"],
            rows[0],
            strict=True,
        )
    )
    # It logs in (a distributed PostgreSQL opens its node connections as it: migration 0011),
    # and has no other attribute.
    assert flags.pop("login") is True
    assert not any(flags.values()), flags
    # It inherits nothing (no pg_read_all_data, no membership in the migration role, ...).
    memberships = _rows(
        "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole", [APP_ROLE]
    )
    assert not memberships, f"{APP_ROLE} is a member of {memberships}"


def test_the_runtime_role_owns_nothing():
    owned = _rows(
        """
        WITH app AS (SELECT oid FROM pg_roles WHERE rolname = %s)
        SELECT 'relation', c.oid::regclass::text FROM pg_class c, app WHERE c.relowner = app.oid
        UNION ALL
        SELECT 'function', p.oid::regprocedure::text FROM pg_proc p, app
         WHERE p.proowner = app.oid
        UNION ALL
        SELECT 'schema', s.nspname::text FROM pg_namespace s, app WHERE s.nspowner = app.oid
        UNION ALL
        SELECT 'type', t.oid::regtype::text FROM pg_type t, app WHERE t.typowner = app.oid
        UNION ALL
        SELECT 'database', d.datname::text FROM pg_database d, app WHERE d.datdba = app.oid
        """,
        [APP_ROLE],
    )
    assert not owned, _report(owned, f"objects owned by {APP_ROLE} (owners bypass RLS)")


def test_the_runtime_role_cannot_create_objects_in_the_pinned_schemas():
    """SECURITY DEFINER functions pin search_path to pg_catalog, public: nobody may plant there."""
    offenders = _rows(
        """
        SELECT s, who FROM unnest(%s::text[]) s, unnest(ARRAY[%s, 'public']) who
         WHERE CASE WHEN who = 'public'
                    THEN EXISTS (
                        SELECT FROM pg_namespace n,
                               aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) acl
                         WHERE n.nspname = s AND acl.grantee = 0
                           AND acl.privilege_type = 'CREATE')
                    ELSE has_schema_privilege(who, s, 'CREATE') END
        """,
        [SCHEMAS, APP_ROLE],
    )
    assert not offenders, _report(offenders, "schemas the app role or PUBLIC may create in")


def test_every_column_a_policy_filters_on_leads_an_index():
    """A policy runs on every row a query considers: its columns need a (non-partial) index.

    The columns come from the policies' own dependencies, so a new policy is covered as soon as
    it exists. Boolean flags (is_active, is_public on the small catalog tables) are exempt: an
    index on them would not be used.
    """
    columns = _rows(
        """
        SELECT DISTINCT d.refobjid::regclass::text, a.attname,
               EXISTS (SELECT FROM pg_index i
                        WHERE i.indrelid = d.refobjid AND i.indkey[0] = d.refobjsubid
                          AND i.indpred IS NULL)
          FROM pg_depend d
          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_policy'::regclass AND d.refclassid = 'pg_class'::regclass
           AND d.refobjsubid > 0 AND a.atttypid <> 'boolean'::regtype
         ORDER BY 1, 2
        """
    )
    seen = {(table, column) for table, column, _ in columns}
    for table in ("access_tokens", "ai_usage_requests", "agent_sessions", "usage_alerts"):
        assert (table, "user_id") in seen
    assert ("users", "id") in seen
    offenders = [(table, column) for table, column, indexed in columns if not indexed]
    assert not offenders, _report(offenders, "policy columns without an index leading with them")
