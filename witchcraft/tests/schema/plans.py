"""What PostgreSQL would do with a query (EXPLAIN), for the named-index tests: whether a plan
scans an index, or a partition's child of it."""

import json
from collections.abc import Iterator

from witchcraft.tests.schema.db import execute, fetchall

INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


def analyze(*tables: str) -> None:
    for table in tables:
        execute(f"ANALYZE {table}")


def _plan(sql: str, params=None) -> dict:
    (raw,) = fetchall(f"EXPLAIN (FORMAT JSON) {sql}", params)[0]
    document = json.loads(raw) if isinstance(raw, str) else raw
    return document[0]["Plan"]


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _ancestors(index_name: str) -> set[str]:
    """The index and the partitioned indexes it is a partition of (pg_inherits on indexes)."""
    names = {index_name}
    rows = fetchall(
        "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = %s::regclass",
        [index_name],
    )
    for (parent,) in rows:
        names |= _ancestors(parent)
    return names


def _indexes_scanned(plan: dict) -> set[str]:
    return {node["Index Name"] for node in _nodes(plan) if node["Node Type"] in INDEX_SCANS}


def assert_uses(index: str, sql: str, params=None) -> None:
    plan = _plan(sql, params)
    scanned = _indexes_scanned(plan)
    assert any(index in _ancestors(name) for name in scanned), (
        f"{index} is not used; the plan scans {sorted(scanned) or 'no index'}:\n"
        + json.dumps(plan, indent=1)
    )
