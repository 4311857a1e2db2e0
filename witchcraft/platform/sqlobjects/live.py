"""The live files: where each kind of object lives, what its file may hold, reading them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlparse
from django.apps import apps

# The apps whose folders hold live definitions (the project's own, not Django's or procrastinate's).
PROJECT_APPS = ("accounts", "agents", "billing", "usage", "witchcraft")

_NAME = r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?"
NAME = re.compile(_NAME)
_I = re.IGNORECASE | re.DOTALL


class SqlObjectError(Exception):
    """A live file that does not define what its name says, or a change the writer cannot
    write."""


@dataclass(frozen=True)
class Kind:
    """One kind of object: its folder under ``<app>/sql/`` (also its key's prefix), and the
    statements its file may hold. Each pattern's ``name`` group must be the file's object."""

    folder: str
    noun: str
    allowed: tuple[re.Pattern, ...]
    defines: re.Pattern  # the statement that creates it: at least one per file
    qualify: bool = True  # a name without a schema is in public (triggers are named bare)


def _p(pattern: str) -> re.Pattern:
    """A statement's start: any whitespace between words, NAME the object's name."""
    return re.compile(pattern.replace(" ", r"\s+").replace("NAME", f"(?P<name>{_NAME})"), _I)


FUNCTIONS = Kind(
    folder="functions",
    noun="function",
    allowed=(
        _p(r"CREATE OR REPLACE FUNCTION NAME\s*\("),
        _p(r"(REVOKE|GRANT) [a-z ,]+ ON FUNCTION NAME\s*\("),
        _p(r"COMMENT ON FUNCTION NAME\s*\("),
    ),
    defines=_p(r"CREATE OR REPLACE FUNCTION NAME\s*\("),
)
TRIGGERS = Kind(
    folder="triggers",
    noun="trigger",
    allowed=(_p(r"CREATE OR REPLACE TRIGGER NAME\s"),),
    defines=_p(r"CREATE OR REPLACE TRIGGER NAME\s"),
    qualify=False,
)
POLICIES = Kind(
    folder="policies",
    noun="policies of table",
    allowed=(
        _p(r"ALTER TABLE NAME (ENABLE|FORCE) ROW LEVEL SECURITY\s*;?$"),
        _p(r"DROP POLICY IF EXISTS [a-z_][a-z0-9_]* ON NAME\s*;?$"),
        _p(r"CREATE POLICY [a-z_][a-z0-9_]* ON NAME\s"),
    ),
    defines=_p(r"CREATE POLICY [a-z_][a-z0-9_]* ON NAME\s"),
)
VIEWS = Kind(
    folder="views",
    noun="view",
    allowed=(
        _p(r"CREATE OR REPLACE VIEW NAME\s"),
        _p(r"CREATE MATERIALIZED VIEW IF NOT EXISTS NAME\s"),
        _p(r"CREATE (UNIQUE )?INDEX IF NOT EXISTS [a-z_][a-z0-9_]* ON NAME\s"),
        _p(r"(GRANT|REVOKE) [a-z ,]+ ON NAME\s"),
        _p(r"COMMENT ON (MATERIALIZED )?VIEW NAME\s"),
    ),
    defines=_p(r"CREATE (OR REPLACE VIEW|MATERIALIZED VIEW IF NOT EXISTS) NAME\s"),
)
KINDS = {kind.folder: kind for kind in (FUNCTIONS, TRIGGERS, POLICIES, VIEWS)}

_CREATE_POLICY = re.compile(r"CREATE POLICY (?P<policy>[a-z_][a-z0-9_]*) ON ", _I)
_DROP_POLICY = re.compile(r"DROP POLICY IF EXISTS (?P<policy>[a-z_][a-z0-9_]*) ON ", _I)
_TRIGGER_TABLE = re.compile(
    rf"CREATE OR REPLACE TRIGGER [a-z_][a-z0-9_]*\s.*?\sON\s+(?P<table>{_NAME})\s", _I
)


def key(kind: str, name: str) -> str:
    """How the live files and the migrations name an object: ``functions/public.x``."""
    return f"{kind}/{name}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def qualified(name: str, kind: Kind = FUNCTIONS) -> str:
    """``record_ai_usage`` -> ``public.record_ai_usage``; ``auth.user_id`` as it is."""
    return name if "." in name or not kind.qualify else f"public.{name}"


def file_name(name: str) -> str:
    """The live file's name for an object's name (``public.`` left out)."""
    schema, dot, short = name.partition(".")
    return f"{short}.sql" if dot and schema == "public" else f"{name}.sql"


def statements(text: str) -> list[str]:
    """The statements of a live file, one by one (what RunSQL does with a script)."""
    return [s for s in (part.strip() for part in sqlparse.split(text)) if s.strip(";\n ")]


def _without_comments(statement: str) -> str:
    lines = statement.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


@dataclass(frozen=True)
class LiveDefinition:
    """One live file: the definition of the object ``name`` of ``kind``, owned by ``app``."""

    app: str
    kind: str
    name: str
    path: Path
    text: str

    @property
    def key(self) -> str:
        return key(self.kind, self.name)


def read_live(path: Path, app: str, kind: str = FUNCTIONS.folder) -> LiveDefinition:
    """Read and check one live file: every statement is of its kind and about its object."""
    spec = KINDS[kind]
    text = path.read_text()
    name = qualified(path.name.removesuffix(".sql"), spec)
    defines = False
    for statement in statements(text):
        body = _without_comments(statement)
        match = next((m for p in spec.allowed if (m := p.match(body))), None)
        if match is None or qualified(match.group("name").lower(), spec) != name:
            raise SqlObjectError(
                f"{path}: a live file of {spec.folder}/ holds the {spec.noun} {name} it is"
                f" named after and nothing else; this statement is not about it:"
                f" {(body or statement).splitlines()[0]}"
            )
        defines = defines or bool(spec.defines.match(body))
    if not defines:
        raise SqlObjectError(f"{path}: does not create the {spec.noun} {name}")
    if spec is POLICIES and policy_names(text) != _dropped_policies(text):
        raise SqlObjectError(
            f"{path}: each CREATE POLICY comes after DROP POLICY IF EXISTS of the same policy,"
            " so that the file can run again"
        )
    return LiveDefinition(app=app, kind=kind, name=name, path=path, text=text)


def live_definitions(app_labels: Iterable[str] = PROJECT_APPS) -> dict[str, LiveDefinition]:
    """Every live file of the project, by key."""
    found: dict[str, LiveDefinition] = {}
    for label in app_labels:
        for kind in KINDS:
            folder = Path(apps.get_app_config(label).path) / "sql" / kind
            for path in sorted(folder.glob("*.sql")):
                definition = read_live(path, label, kind)
                if definition.key in found:
                    raise SqlObjectError(
                        f"{definition.key} is defined twice: {found[definition.key].path}"
                        f" and {path}"
                    )
                found[definition.key] = definition
    return found


def policy_names(text: str) -> set[str]:
    """The policies a policies file creates."""
    return {m.group("policy") for m in _CREATE_POLICY.finditer(text)}


def _dropped_policies(text: str) -> set[str]:
    return {m.group("policy") for m in _DROP_POLICY.finditer(text)}


def trigger_table(text: str) -> str:
    """The table of a trigger file's trigger."""
    match = _TRIGGER_TABLE.search(text)
    if match is None:
        raise SqlObjectError("a trigger file names its table: CREATE OR REPLACE TRIGGER ... ON")
    return match.group("table")


def is_materialized(text: str) -> bool:
    return "CREATE MATERIALIZED VIEW" in text.upper()
