"""``manage.py backup`` and ``manage.py restore`` on the real server (embedded 18 or DATABASE_URL).

The data is committed (``transaction=True``) so that pg_dump, on its own connection, sees it.
Restored databases get unique names and are dropped after each test, whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from psycopg import sql

from accounts.models import AuditLog, User
from accounts.services import user_register
from agents import services as agents
from billing import webhooks
from billing.models import PaymentHistory
from usage import services as usage
from usage.models import AIUsageRequest
from witchcraft.operations.backups import (
    BACKUP_CREATED,
    BACKUP_RESTORED,
    BackupError,
    backup_create,
    backup_restore,
    comparison,
    database_verify,
    inventory,
)
from witchcraft.operations.backups.clients import choose_client, search_dirs
from witchcraft.operations.backups.servers import configured_server
from witchcraft.platform import embedded_db, rls
from witchcraft.testing.factories import catalog_model

committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PASSWORD = "Backup-passphrase-7-long!"
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def backup_dir(tmp_path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def new_database():
    """A maker of fresh database names; every database made is dropped after the test."""
    names: list[str] = []

    def make() -> str:
        names.append(f"wc_test_restore_{secrets.token_hex(5)}")
        return names[-1]

    yield make
    with configured_server().connect(autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def activity() -> dict:
    """Committed rows through the services: accounts, metered usage, an agent conversation
    with a recorded reply, a payment through the provider's webhook."""
    emails = [f"backup-{n}@example.com" for n in range(3)]
    users = [User.objects.get(pk=user_register(email=e, password=PASSWORD)) for e in emails]
    model = catalog_model("gpt-5-mini")
    for n, user in enumerate(users):
        for k in range(3):
            with transaction.atomic(), rls.user_context(user, may_record=True):
                usage.usage_record(
                    user_id=user.pk,
                    provider_id=model.provider_id,
                    model_id=model.id,
                    input_tokens=100 * (k + 1),
                    output_tokens=40 + n,
                    request_id=f"backup-{n}-{k}",
                    latency_ms=300 + k,
                )
    with transaction.atomic(), rls.user_context(users[0], may_record=True):
        session = agents.session_create(user_id=users[0].pk, title="Backups")
        agents.message_add(
            user_id=users[0].pk, session_id=session.pk, role="user", content="Is it saved?"
        )
        agents.message_add(
            user_id=users[0].pk,
            session_id=session.pk,
            role="assistant",
            content="Every night.",
            usage=agents.MessageUsage(
                provider="openai",
                model="gpt-5-mini",
                input_tokens=120,
                output_tokens=30,
                request_id="backup-agent-1",
            ),
        )
    checkout = webhooks.Event(
        id="evt_backup_1",
        type="checkout.session.completed",
        created=datetime.now(UTC),
        object={
            "id": "cs_backup",
            "client_reference_id": str(users[1].pk),
            "customer": "cus_backup",
            "subscription": "sub_backup",
            "invoice": "in_backup",
            "amount_total": 2000,
            "currency": "usd",
            "payment_status": "paid",
            "metadata": {"tier": "pro"},
        },
    )
    assert webhooks.event_apply(provider="stripe", event=checkout).outcome == webhooks.APPLIED
    return {"users": users, "emails": emails}


def _tables(manifest: dict) -> dict[str, dict]:
    return {f"{t['schema']}.{t['name']}": t for t in manifest["tables"]}


def _rows(dbname: str, query: str, params=None) -> list[tuple]:
    with configured_server().connect(dbname) as conn:
        return conn.execute(query, params).fetchall()


def _fingerprints(dbname: str, tables: list[str]) -> dict[str, tuple[int, str]]:
    """Per table: count and md5 of its sorted rows, a method independent of the inventory."""
    out = {}
    with configured_server().connect(dbname) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for name in tables:
            schema, table = name.split(".")
            ident = sql.Identifier(schema, table)
            out[name] = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text),"
                    " '')) FROM ONLY {} AS r"
                ).format(ident)
            ).fetchone()
    return out


_POLICIES = """
    SELECT schemaname, tablename, policyname, cmd, roles::text[], qual, with_check
      FROM pg_policies WHERE schemaname IN ('public', 'auth', 'archive') ORDER BY 1, 2, 3
"""
_FUNCTIONS = """
    SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prosecdef,
           p.proconfig
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN ('public', 'auth', 'archive') ORDER BY 1, 2, 3
"""


# The round trip ------------------------------------------------------------------------------


@committed
def test_a_backup_restores_into_a_new_database_with_every_table_equal(
    activity, backup_dir, new_database
):
    source = connection.settings_dict["NAME"]
    result = backup_create(directory=backup_dir, keep=7)
    manifest = json.loads(result.manifest_path.read_text())
    tables = _tables(manifest)

    # The manifest counted exactly what was committed, partitions included.
    assert tables["public.users"]["rows"] == User.objects.count() == 3
    assert tables["public.payment_history"]["rows"] == PaymentHistory.objects.count() == 1
    assert tables["public.ai_usage_requests"]["rows"] == AIUsageRequest.objects.count() == 10
    partitions = [t for t in manifest["tables"] if t["parent"] == "public.ai_usage_requests"]
    assert partitions and sum(p["rows"] for p in partitions) == 10
    assert sum(int(p["checksum"]) for p in partitions) == int(
        tables["public.ai_usage_requests"]["checksum"]
    )
    assert {"auth"} <= {f["schema"] for f in manifest["functions"]}
    assert manifest["server_major"] == connection.connection.info.server_version // 10000
    assert manifest["client"]["major"] == manifest["server_major"]
    assert manifest["roles"]["grantees"] == ["witchcraft_app"]

    restored = new_database()
    outcome = backup_restore(path=result.path, database=restored)
    assert outcome.verification.differences == []
    assert outcome.verification.totals["tables"] == len(manifest["tables"])

    # Checked again without the inventory: every table's rows, the policies, the functions.
    # Only audit_logs moved on in the source since (backup_created, backup_restored).
    plain = [name for name, t in tables.items() if t["kind"] == "table"]
    same = [name for name in plain if name != "public.audit_logs"]
    assert _fingerprints(restored, same) == _fingerprints(source, same)
    counts = {name: rows for name, (rows, _) in _fingerprints(restored, plain).items()}
    assert counts == {name: tables[name]["rows"] for name in plain}
    assert _rows(restored, _POLICIES) == _rows(source, _POLICIES)
    assert len(_rows(source, _POLICIES)) == len(manifest["policies"]) > 0
    assert _rows(restored, _FUNCTIONS) == _rows(source, _FUNCTIONS)

    created = AuditLog.objects.get(event_type=BACKUP_CREATED)
    assert created.details["file"] == result.path.name
    assert created.details["size"] == result.size == result.path.stat().st_size
    assert created.details["tables"] == len(manifest["tables"])
    assert created.details["pruned"] == 0
    restored_row = AuditLog.objects.get(event_type=BACKUP_RESTORED)
    assert restored_row.details["database"] == restored
    assert restored_row.details["source_database"] == source
    assert restored_row.details["outcome"] == "verified"


@committed
def test_the_commands_print_the_file_its_size_the_time_and_verified(backup_dir, new_database):
    out = _call("backup", dir=str(backup_dir), keep=2)
    (dump,) = backup_dir.glob("*.dump")
    assert f"backup: {dump} (" in out and " s\n" in out
    assert (
        "client: pg_" in out and "pruned: 0 backup(s) older than 7 days (never the newest 2)" in out
    )
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    for path in (dump, dump.with_suffix(".json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(backup_dir.glob(".*"))  # no temporary file left

    restored = new_database()
    out = _call("restore", str(dump), database=restored)
    assert out.startswith(f"restored {dump.name} into database '{restored}' with pg_restore ")
    assert "checked: " in out and " policies, " in out and " functions, " in out
    assert out.rstrip().splitlines()[-1] == "verified"


@committed
def test_a_write_committed_during_the_backup_is_in_neither_the_dump_nor_the_manifest(
    backup_dir, new_database, monkeypatch
):
    """pg_dump reads the snapshot the inventory is taken in, whatever commits meanwhile."""
    take = inventory.take
    raced: list[bool] = []

    def take_after_a_concurrent_commit(conn):
        if not raced:  # the backup's inventory, pg_dump already started
            with configured_server().connect(autocommit=True) as other:
                other.execute(
                    "INSERT INTO django_content_type (app_label, model) VALUES ('backup', 'race')"
                )
            raced.append(True)
        return take(conn)

    monkeypatch.setattr(inventory, "take", take_after_a_concurrent_commit)
    before = ContentType.objects.count()

    result = backup_create(directory=backup_dir)

    assert raced and ContentType.objects.count() == before + 1
    manifest = json.loads(result.manifest_path.read_text())
    assert _tables(manifest)["public.django_content_type"]["rows"] == before
    restored = new_database()
    assert backup_restore(path=result.path, database=restored).verification.verified
    race = "SELECT count(*) FROM django_content_type WHERE app_label = 'backup'"
    assert _rows(restored, race) == [(0,)]


# Mismatches ---------------------------------------------------------------------------------


@committed
def test_a_tampered_restore_is_reported(activity, backup_dir, new_database):
    result = backup_create(directory=backup_dir)
    manifest = json.loads(result.manifest_path.read_text())
    restored = new_database()
    assert backup_restore(path=result.path, database=restored).verification.verified
    policy = next(p for p in manifest["policies"] if p["table"] == "users")

    with configured_server().connect(restored, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers: raw tampering
        conn.execute("DELETE FROM payment_history")
        conn.execute("UPDATE user_profiles SET display_name = 'tampered'")
        conn.execute(
            sql.SQL("DROP POLICY {} ON public.users").format(sql.Identifier(policy["name"]))
        )
        conn.execute("ALTER FUNCTION auth.user_id() SECURITY DEFINER")
    verification = database_verify(database=restored, manifest=manifest)

    assert not verification.verified
    assert set(verification.differences) == {
        "table public.payment_history: 1 rows in the backup, 0 restored",
        "table public.user_profiles: checksum differs",
        f"policy {policy['name']} on public.users: missing from the restored database",
        "function auth.user_id(): security_definer differs",
    }


@committed
def test_restore_exits_1_listing_the_differences_and_keeps_the_database(backup_dir, new_database):
    result = backup_create(directory=backup_dir)
    manifest = json.loads(result.manifest_path.read_text())
    users = next(t for t in manifest["tables"] if t["name"] == "users")
    users["rows"] += 1  # the manifest now claims a user the dump does not hold
    result.manifest_path.write_text(json.dumps(manifest))
    restored = new_database()

    with pytest.raises(CommandError) as failed:
        _call("restore", str(result.path), database=restored)

    message = str(failed.value)
    assert message.startswith(f"database '{restored}' does not match the backup (1 difference")
    assert f'left for inspection (DROP DATABASE "{restored}" WITH (FORCE) when done)' in message
    assert _rows("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", [restored])
    row = AuditLog.objects.get(event_type=BACKUP_RESTORED)
    assert (row.details["outcome"], row.details["differences"]) == ("mismatch", 1)
    assert row.severity == "warning"


# Pruning ------------------------------------------------------------------------------------


@committed
def test_pruning_deletes_the_backups_of_this_database_older_than_the_retention(
    backup_dir, settings
):
    settings.BACKUP_RETENTION_DAYS = 3
    backup_dir.mkdir()
    other = backup_dir / "witchcraft-another_db-20200101T000000Z.dump"
    other.write_bytes(b"another database's backup")
    first = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)

    results = [
        backup_create(directory=backup_dir, keep=2, now=first + timedelta(days=day))
        for day in range(6)
    ]

    # On day 4 the backup of day 0 is over 3 days old; on day 5, day 1's.
    assert [len(r.pruned) for r in results] == [0, 0, 0, 0, 1, 1]
    kept = [r.path.name for r in results[2:]]
    assert sorted(p.name for p in backup_dir.glob("*.dump")) == sorted([other.name, *kept])
    assert sorted(p.name for p in backup_dir.glob("*.json")) == sorted(
        Path(name).with_suffix(".json").name for name in kept
    )
    assert results[0].path.name.endswith("-20260101T020000Z.dump")
    pruned = AuditLog.objects.filter(event_type=BACKUP_CREATED).order_by("id")
    assert [row.details["pruned"] for row in pruned] == [0, 0, 0, 0, 1, 1]


@committed
def test_pruning_never_goes_below_the_newest_n_however_old(backup_dir, settings):
    settings.BACKUP_RETENTION_DAYS = 7
    first = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    old = [
        backup_create(directory=backup_dir, keep=2, now=first + timedelta(days=day))
        for day in range(3)
    ]
    # A month without backups (the worker was down): of the old ones, only the newest stays
    # beside the new one, the floor of 2.
    new = backup_create(directory=backup_dir, keep=2, now=first + timedelta(days=30))
    assert sorted(new.pruned) == sorted(r.path for r in old[:2])
    assert sorted(backup_dir.glob("*.dump")) == sorted([old[2].path, new.path])


@committed
def test_keep_must_be_at_least_one(backup_dir):
    with pytest.raises(
        CommandError,
        match=r"^backup failed: keep must be at least 1 \(the new backup counts\), got 0$",
    ):
        _call("backup", dir=str(backup_dir), keep=0)
    assert not backup_dir.exists()


# Refusals -----------------------------------------------------------------------------------


@committed
def test_restore_refuses_an_existing_database(backup_dir):
    result = backup_create(directory=backup_dir)
    source = connection.settings_dict["NAME"]

    with pytest.raises(CommandError) as refused:
        _call("restore", str(result.path), database=source)

    assert str(refused.value) == (
        f"restore failed: database '{source}' already exists: restore only creates a new "
        "database (it never overwrites); choose another name"
    )
    assert not AuditLog.objects.filter(event_type=BACKUP_RESTORED).exists()


@committed
def test_restore_refuses_a_backup_needing_a_role_this_server_lacks(backup_dir, new_database):
    result = backup_create(directory=backup_dir)
    manifest = json.loads(result.manifest_path.read_text())
    manifest["roles"]["grantees"].append("wc_no_such_role")
    result.manifest_path.write_text(json.dumps(manifest))
    restored = new_database()

    with pytest.raises(BackupError, match=r"^role wc_no_such_role does not exist on this server"):
        backup_restore(path=result.path, database=restored)
    assert not _rows("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", [restored])


@committed
def test_restore_refuses_a_damaged_file(backup_dir, new_database):
    result = backup_create(directory=backup_dir)
    with open(result.path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BackupError, match="does not match its manifest"):
        backup_restore(path=result.path, database=new_database())


def test_a_missing_file_is_one_clear_line_and_exit_status_1(tmp_path):
    missing = tmp_path / "nothing-here.dump"
    done = subprocess.run(
        [sys.executable, "manage.py", "restore", str(missing), "--database", "wc_never_made"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "Error" in line]
    assert errors == [f"CommandError: restore failed: no backup file at {missing}"]
    assert done.stdout == ""


# The manifest -------------------------------------------------------------------------------


@committed
def test_the_manifest_holds_no_row_data_and_no_secret(activity, backup_dir):
    result = backup_create(directory=backup_dir)
    text = result.manifest_path.read_text()
    hashes = list(User.objects.values_list("password", flat=True))

    for secret in [PASSWORD, *activity["emails"], *hashes, "Every night.", "in_backup"]:
        assert secret not in text
    if connection.settings_dict.get("PASSWORD"):
        assert connection.settings_dict["PASSWORD"] not in text
    manifest = json.loads(text)
    assert "password" not in {key.lower() for key in manifest}
    for table in manifest["tables"]:
        assert set(table) == {
            "schema", "name", "kind", "parent", "rls", "force_rls", "rows", "checksum",
            "owner", "grants", "column_grants",
        }  # fmt: skip
    assert manifest["dump"]["sha256"] and manifest["database"] == connection.settings_dict["NAME"]


@committed
def test_verify_restores_into_a_scratch_database_and_drops_it(backup_dir):
    result = backup_create(directory=backup_dir, verify=True)

    assert result.restore_checked
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["restore_checked"]["client"]["program"] == "pg_restore"
    assert not _rows(
        "postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'wc_restore_check_%'"
    )


def _with_check(definition: str) -> dict:
    constraint = {"schema": "public", "table": "t", "name": "t_status_valid", "type": "c"}
    return {"constraints": [{**constraint, "definition": definition}]}


def test_a_check_deparsed_anew_after_a_restore_is_the_same_but_a_changed_one_is_not():
    dumped = _with_check(
        "CHECK (((status)::text = ANY ((ARRAY['ok'::character varying,"
        " 'failed'::character varying])::text[])))"
    )
    restored = _with_check(
        "CHECK (((status)::text = ANY (ARRAY[('ok'::character varying)::text,"
        " ('failed'::character varying)::text])))"
    )
    changed = _with_check(
        "CHECK (((status)::text = ANY (ARRAY[('ok'::character varying)::text,"
        " ('lost'::character varying)::text])))"
    )

    assert comparison.compare(dumped, restored) == []
    assert comparison.compare(dumped, changed) == [
        "constraint t_status_valid on public.t: definition differs"
    ]


# Which client -------------------------------------------------------------------------------


def _client(folder: Path, tool: str, version: str) -> Path:
    """A program answering ``--version`` like a PostgreSQL client of ``version``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / tool
    path.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
    path.chmod(0o755)
    return path


def test_the_client_of_the_servers_major_is_preferred_to_a_newer_one(tmp_path):
    _client(tmp_path / "17", "pg_dump", "17.2")
    same = _client(tmp_path / "15", "pg_dump", "15.20")

    chosen = choose_client(
        "pg_dump", server_major=15, embedded=False, dirs=[tmp_path / "17", tmp_path / "15"]
    )

    assert (chosen.path, chosen.version, chosen.major) == (same, "15.20", 15)


def test_a_newer_client_is_taken_only_when_none_of_the_servers_major_exists(tmp_path):
    _client(tmp_path / "18", "pg_dump", "18.4")
    closest = _client(tmp_path / "16", "pg_dump", "16.8")

    chosen = choose_client(
        "pg_dump", server_major=15, embedded=False, dirs=[tmp_path / "18", tmp_path / "16"]
    )

    assert (chosen.path, chosen.major) == (closest, 16)


def test_an_older_client_is_refused_saying_what_was_found(tmp_path):
    older = _client(tmp_path / "14", "pg_dump", "14.11")

    with pytest.raises(BackupError) as refused:
        choose_client("pg_dump", server_major=15, embedded=False, dirs=[tmp_path / "14"])

    assert str(refused.value) == (
        f"no pg_dump for PostgreSQL 15 found (found: 14 at {older}; older ones cannot be used):"
        " install the PostgreSQL 15 client (postgresql-client-15) or set PG_BIN_DIR"
    )


def test_pg_restore_must_be_as_new_as_the_pg_dump_that_wrote_the_archive(tmp_path):
    _client(tmp_path / "15", "pg_restore", "15.20")
    newer = _client(tmp_path / "17", "pg_restore", "17.2")

    chosen = choose_client(
        "pg_restore",
        server_major=15,
        embedded=False,
        minimum_major=17,
        dirs=[tmp_path / "15", tmp_path / "17"],
    )

    assert chosen.path == newer


def test_the_embedded_server_uses_its_bundled_client_and_others_may_as_a_last_resort():
    chosen = choose_client("pg_dump", server_major=embedded_db.PG_MAJOR, embedded=True)
    assert (chosen.path, chosen.major, chosen.bundled) == (
        embedded_db.bin_dir() / "pg_dump",
        embedded_db.PG_MAJOR,
        True,
    )
    assert search_dirs(15)[-1] == embedded_db.bin_dir()


# Help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("backup", ["--keep", "--dir", "--verify", "BACKUP_DIR", "snapshot", "0600", "newer"]),
        ("restore", ["--database", "never overwrites", "witchcraft_app", "--no-owner", "verified"]),
    ],
)
def test_help_explains_the_command(command, words):
    from django.core.management import load_command_class

    text = load_command_class("witchcraft", command).create_parser("manage.py", command)
    help_text = " ".join(text.format_help().split())
    for word in words:
        assert word in help_text


def _call(*args, **options) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()
