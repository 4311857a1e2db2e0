"""The comparison of two inventories (:mod:`witchcraft.operations.backups.inventory`): the
manifest's and a restored database's. One line per difference, naming the object and what
differs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# What identifies one object of each kind (compare() matches them on it).
KEYS: dict[str, tuple[str, ...]] = {
    "tables": ("schema", "name"),
    "policies": ("schema", "table", "name"),
    "functions": ("schema", "name", "arguments"),
    "triggers": ("schema", "table", "name"),
    "indexes": ("schema", "name"),
    "constraints": ("schema", "table", "name"),
    "views": ("schema", "name"),
    "sequences": ("schema", "name"),
}
# Who owns an object is not compared: a restore with --no-owner changes it on purpose.
_NOT_COMPARED = {"owner"}

# Expressions are compared without casts and parentheses: PostgreSQL deparses some of them
# differently once restored (``col IN ('a', 'b')`` on a varchar column comes back as
# ``ARRAY[('a'::character varying)::text, ...]`` instead of ``(ARRAY['a'::character
# varying, ...])::text[]``), with the same meaning.
_EXPRESSIONS = {"definition", "qual", "with_check"}
_CAST = re.compile(
    r"::(?:character varying|bit varying|double precision|time(?:stamp)? with(?:out)? time zone"
    r'|"?[\w.]+"?)(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*'
)
_AROUND_PUNCTUATION = re.compile(r"\s*([\[\],])\s*")


def _expression(text: str | None) -> str | None:
    if text is None:
        return None
    bare = " ".join(_CAST.sub("", text).replace("(", " ").replace(")", " ").split())
    return _AROUND_PUNCTUATION.sub(r"\1", bare)


def _same(field: str, old: Any, new: Any) -> bool:
    if field in _EXPRESSIONS and isinstance(old, str) and isinstance(new, str):
        return _expression(old) == _expression(new)
    return old == new


# Deparsed whole definitions that change between major versions (PostgreSQL 16 stopped
# qualifying the columns of a single-table view, say): compared only within one major.
DEPARSED = frozenset({"definition_md5"})


def compare(
    expected: Mapping[str, Any], actual: Mapping[str, Any], *, ignore: frozenset[str] = frozenset()
) -> list[str]:
    """What differs between two inventories (``expected``: the manifest), one line each.

    Fields named in ``ignore`` are not compared.
    """
    differences: list[str] = []
    for kind, key in KEYS.items():
        differences.extend(
            _compare_kind(kind, key, expected.get(kind, []), actual.get(kind, []), ignore)
        )
    return differences


_LABELS = {
    "tables": "table",
    "policies": "policy",
    "functions": "function",
    "triggers": "trigger",
    "indexes": "index",
    "constraints": "constraint",
    "views": "view",
    "sequences": "sequence",
}


def _label(kind: str, item: Mapping[str, Any]) -> str:
    if kind == "functions":
        return f"function {item['schema']}.{item['name']}({item['arguments']})"
    if kind in ("policies", "triggers", "constraints"):
        return f"{_LABELS[kind]} {item['name']} on {item['schema']}.{item['table']}"
    return f"{_LABELS[kind]} {item['schema']}.{item['name']}"


def _compare_kind(
    kind: str,
    key: tuple[str, ...],
    expected: Iterable[Mapping],
    actual: Iterable[Mapping],
    ignore: frozenset[str],
) -> list[str]:
    before = {tuple(item[k] for k in key): item for item in expected}
    after = {tuple(item[k] for k in key): item for item in actual}
    lines = []
    for ident in sorted(before.keys() - after.keys()):
        lines.append(f"{_label(kind, before[ident])}: missing from the restored database")
    for ident in sorted(after.keys() - before.keys()):
        lines.append(f"{_label(kind, after[ident])}: not in the backup")
    for ident in sorted(before.keys() & after.keys()):
        old, new = before[ident], after[ident]
        if kind == "tables" and old["rows"] != new["rows"]:
            lines.append(
                f"{_label(kind, old)}: {old['rows']} rows in the backup, {new['rows']} restored"
            )
            continue
        changed = sorted(
            field
            for field in old.keys() | new.keys()
            if field not in _NOT_COMPARED
            and field not in ignore
            and not _same(field, old.get(field), new.get(field))
        )
        if changed:
            verb = "differs" if len(changed) == 1 else "differ"
            lines.append(f"{_label(kind, old)}: {', '.join(changed)} {verb}")
    return lines
