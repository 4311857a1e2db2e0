"""The inventory of a database: what a backup must bring back, and the comparison of two.

Per table of the ``public``, ``auth`` and ``archive`` schemas (partitions included): the row
count and a checksum, the row-level-security flags and the grants. Then the policies, the
functions, the triggers, indexes, constraints, views and sequences. Never a row's content: the
checksum is the sum of a 64-bit hash of each row's text (``hashtextextended(row::text, 0)``), so
it does not depend on the order of the rows, and for a partitioned table it is the sum of its
partitions'.

A backup computes it in the snapshot its ``pg_dump`` reads; a restore computes it again in the
new database and compares the two (:mod:`witchcraft.operations.backups.comparison`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from witchcraft.operations.backups.comparison import KEYS

SCHEMAS = ["public", "auth", "archive"]
CHECKSUM_METHOD = "count(*) and sum(hashtextextended(row::text, 0)) per table, UTC, ISO dates"

# The text of a row depends on these settings: both sides compute under the same ones.
# row_security = off: a role that RLS would filter gets an error, never a short count.
SESSION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "lc_monetary": "C",
    "row_security": "off",
    "search_path": "pg_catalog",
}

# Objects that belong to an extension are the extension's business, not ours.
_NOT_EXTENSION = """
    NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = {catalog}::regclass
                AND d.objid = {oid} AND d.deptype = 'e')
"""
_GRANTS = """
    coalesce((SELECT array_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                             ELSE pg_get_userbyid(a.grantee) END
                                        || ':' || a.privilege_type)
                FROM aclexplode({acl}) a WHERE a.grantee <> {owner}), '{{}}')
"""

_TABLES = f"""
SELECT n.nspname, c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
       pn.nspname || '.' || p.relname AS parent, pg_get_userbyid(c.relowner),
       {_GRANTS.format(acl="c.relacl", owner="c.relowner")} AS grants,
       coalesce((SELECT array_agg(DISTINCT att.attname || '.' ||
                                  CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                       ELSE pg_get_userbyid(a.grantee) END
                                  || ':' || a.privilege_type)
                   FROM pg_attribute att, aclexplode(att.attacl) a
                  WHERE att.attrelid = c.oid AND NOT att.attisdropped
                    AND a.grantee <> c.relowner), '{{}}') AS column_grants
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
  LEFT JOIN pg_class p ON p.oid = i.inhparent
  LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('r', 'p')
   AND {_NOT_EXTENSION.format(catalog="'pg_class'", oid="c.oid")}
 ORDER BY 1, 2
"""  # noqa: S608 - built from the constant fragments above

_POLICIES = """
SELECT schemaname, tablename, policyname, permissive, roles::text[], cmd, qual, with_check
  FROM pg_policies WHERE schemaname = ANY (%(schemas)s) ORDER BY 1, 2, 3
"""

_FUNCTIONS = f"""
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind::text,
       p.prosecdef, coalesce(p.proconfig, '{{}}'), pg_get_function_result(p.oid),
       md5(coalesce(pg_get_function_sqlbody(p.oid), p.prosrc)), pg_get_userbyid(p.proowner),
       {_GRANTS.format(acl="p.proacl", owner="p.proowner")}
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY (%(schemas)s)
   AND {_NOT_EXTENSION.format(catalog="'pg_proc'", oid="p.oid")}
 ORDER BY 1, 2, 3
"""  # noqa: S608 - built from the constant fragments above

# Clones on partitions (tgparentid / conparentid) follow their parent: only originals count.
# NOT NULL constraints (catalogued from PostgreSQL 18 on) belong to the column definitions.
_TRIGGERS = """
SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND NOT t.tgisinternal AND t.tgparentid = 0
 ORDER BY 1, 2, 3
"""

_INDEXES = """
SELECT schemaname, tablename, indexname, indexdef
  FROM pg_indexes WHERE schemaname = ANY (%(schemas)s) ORDER BY 1, 3
"""

_CONSTRAINTS = """
SELECT n.nspname, c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid)
  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND con.conparentid = 0 AND con.contype <> 'n'
 ORDER BY 1, 2, 3
"""

_VIEWS = f"""
SELECT n.nspname, c.relname, c.relkind::text, coalesce(c.reloptions, '{{}}'),
       md5(pg_get_viewdef(c.oid)), pg_get_userbyid(c.relowner),
       {_GRANTS.format(acl="c.relacl", owner="c.relowner")}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('v', 'm')
   AND {_NOT_EXTENSION.format(catalog="'pg_class'", oid="c.oid")}
 ORDER BY 1, 2
"""  # noqa: S608 - built from the constant fragments above

_SEQUENCES = """
SELECT n.nspname, c.relname, tn.nspname, t.relname, a.attname, pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_class t ON t.oid = d.refobjid
  LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE n.nspname = ANY (%(schemas)s) AND c.relkind = 'S'
 ORDER BY 1, 2
"""


def prepare_session(conn: psycopg.Connection) -> None:
    """Apply :data:`SESSION_SETTINGS` to ``conn`` (for the rest of its session)."""
    for name, value in SESSION_SETTINGS.items():
        conn.execute("SELECT set_config(%s, %s, false)", [name, value])


def take(conn: psycopg.Connection) -> dict[str, Any]:
    """The inventory of the database ``conn`` is connected to, as JSON-ready data.

    Runs in ``conn``'s current transaction (a backup opens it in its dump's snapshot) after
    :func:`prepare_session`.
    """
    params = {"schemas": SCHEMAS}
    tables = [_table(row) for row in conn.execute(_TABLES, params).fetchall()]
    _count_rows(conn, tables)
    inventory: dict[str, Any] = {
        "tables": tables,
        "policies": [
            {
                "schema": schema,
                "table": table,
                "name": name,
                "permissive": permissive,
                "roles": sorted(roles),
                "cmd": cmd,
                "qual": qual,
                "with_check": with_check,
            }
            for schema, table, name, permissive, roles, cmd, qual, with_check in conn.execute(
                _POLICIES, params
            ).fetchall()
        ],
        "functions": [
            {
                "schema": schema,
                "name": name,
                "arguments": arguments,
                "kind": kind,
                "security_definer": secdef,
                "config": sorted(config),
                "result": result,
                "body_md5": body_md5,
                "owner": owner,
                "grants": sorted(grants),
            }
            for schema, name, arguments, kind, secdef, config, result, body_md5, owner, grants in (
                conn.execute(_FUNCTIONS, params).fetchall()
            )
        ],
        "triggers": _records(conn, _TRIGGERS, ("schema", "table", "name", "definition", "enabled")),
        "indexes": _records(conn, _INDEXES, ("schema", "table", "name", "definition")),
        "constraints": _records(
            conn, _CONSTRAINTS, ("schema", "table", "name", "type", "definition")
        ),
        "views": [
            {
                "schema": schema,
                "name": name,
                "kind": "materialized view" if kind == "m" else "view",
                "options": sorted(options),
                "definition_md5": definition_md5,
                "owner": owner,
                "grants": sorted(grants),
            }
            for schema, name, kind, options, definition_md5, owner, grants in conn.execute(
                _VIEWS, params
            ).fetchall()
        ],
        "sequences": [
            {
                "schema": schema,
                "name": name,
                "owned_by": f"{t_schema}.{t_name}.{column}" if column else None,
                "owner": owner,
            }
            for schema, name, t_schema, t_name, column, owner in conn.execute(
                _SEQUENCES, params
            ).fetchall()
        ],
    }
    inventory["roles"] = roles_of(inventory)
    return inventory


def _table(row: tuple) -> dict[str, Any]:
    schema, name, kind, rls, force_rls, parent, owner, grants, column_grants = row
    return {
        "schema": schema,
        "name": name,
        "kind": "partitioned table" if kind == "p" else "table",
        "parent": parent,
        "rls": rls,
        "force_rls": force_rls,
        "rows": 0,
        "checksum": "0",
        "owner": owner,
        "grants": sorted(grants),
        "column_grants": sorted(column_grants),
    }


def _count_rows(conn: psycopg.Connection, tables: list[dict[str, Any]]) -> None:
    """Fill ``rows`` and ``checksum``: scanned for plain tables, summed for partitioned ones."""
    for table in tables:
        if table["kind"] != "table":
            continue
        query = sql.SQL(
            "SELECT count(*), coalesce(sum(hashtextextended(witchcraft_row::text, 0)), 0)"
            " FROM ONLY {}.{} AS witchcraft_row"
        ).format(sql.Identifier(table["schema"]), sql.Identifier(table["name"]))
        rows, checksum = conn.execute(query).fetchone()
        table["rows"], table["checksum"] = rows, str(checksum)
    by_name = {f"{t['schema']}.{t['name']}": t for t in tables}
    children: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        if table["parent"]:
            children.setdefault(table["parent"], []).append(table)

    def total(table: dict[str, Any]) -> tuple[int, int]:
        if table["kind"] == "table":
            return table["rows"], int(table["checksum"])
        rows = checksum = 0
        for child in children.get(f"{table['schema']}.{table['name']}", []):
            child_rows, child_checksum = total(child)
            rows, checksum = rows + child_rows, checksum + child_checksum
        table["rows"], table["checksum"] = rows, str(checksum)
        return rows, checksum

    for table in by_name.values():
        total(table)


def _records(conn: psycopg.Connection, query: str, names: tuple[str, ...]) -> list[dict]:
    return [dict(zip(names, row, strict=True)) for row in conn.execute(query, {"schemas": SCHEMAS})]


def roles_of(inventory: Mapping[str, Any]) -> dict[str, list[str]]:
    """The roles a restore needs: ``owners`` (else --no-owner) and ``grantees`` (required)."""
    owners: set[str] = set()
    grantees: set[str] = set()
    for kind in ("tables", "functions", "views", "sequences"):
        for item in inventory.get(kind, []):
            owners.add(item["owner"])
            for grant in [*item.get("grants", []), *item.get("column_grants", [])]:
                grantees.add(grant.rsplit(":", 1)[0].rsplit(".", 1)[-1])
    for policy in inventory.get("policies", []):
        grantees.update(policy["roles"])
    grantees -= {"PUBLIC", "public"}
    return {"owners": sorted(owners), "grantees": sorted(grantees)}


def sequences_behind(conn: psycopg.Connection, inventory: Mapping[str, Any]) -> list[str]:
    """Sequences whose value is below the largest value of the column they feed.

    Sequence values are not part of a snapshot, so they are not compared with the backup;
    what matters after a restore is that the next value does not collide with a restored row.
    """
    behind = []
    for sequence in inventory.get("sequences", []):
        if not sequence["owned_by"]:
            continue
        t_schema, t_name, column = sequence["owned_by"].split(".", 2)
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT max({col})::bigint FROM {schema}.{table}),"
                " (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
                " FROM {seq_schema}.{seq})"
            ).format(
                col=sql.Identifier(column),
                schema=sql.Identifier(t_schema),
                table=sql.Identifier(t_name),
                seq_schema=sql.Identifier(sequence["schema"]),
                seq=sql.Identifier(sequence["name"]),
            )
        ).fetchone()
        largest, current = row
        if largest is not None and current < largest:
            behind.append(
                f"sequence {sequence['schema']}.{sequence['name']}: at {current}, below the "
                f"largest {sequence['owned_by']} ({largest})"
            )
    return behind


def totals(inventory: Mapping[str, Any]) -> dict[str, int]:
    """How many objects of each kind, and the rows of the plain tables (partitions once)."""
    counts = {kind: len(inventory.get(kind, [])) for kind in KEYS}
    counts["rows"] = sum(t["rows"] for t in inventory.get("tables", []) if t["kind"] == "table")
    return counts
