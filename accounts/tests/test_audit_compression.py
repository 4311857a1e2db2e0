"""Audit events past AUDIT_COMPRESS_AFTER_DAYS are stored compressed, per user and UTC month
(compress_audit_logs, run by daily maintenance in bounded batches), and read back by
archived_audit_logs() under row-level security.

Events are made old with UPDATEs by the test connection outside any context (the owner).
"""

import json
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from accounts.models import AuditLog
from witchcraft.operations import maintenance
from witchcraft.platform import rls
from witchcraft.testing.factories import AuditLogFactory, UserFactory

pytestmark = pytest.mark.django_db


def _value(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def _event(user, days_old: float, **fields) -> AuditLog:
    log = AuditLogFactory(user=user, **fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_logs SET created_at = now() - make_interval(secs => %s) WHERE id = %s",
            [days_old * 86400, log.pk],
        )
    log.refresh_from_db()
    return log


def _compress(days: int = 90, max_rows: int = 50_000) -> dict:
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT compress_audit_logs(%s, %s)", [days, max_rows])
        summary = cursor.fetchone()[0]
    return json.loads(summary) if isinstance(summary, str) else summary


def _daily() -> dict:
    """daily_maintenance() as the scheduled job runs it (the settings' retention)."""
    sql = maintenance.JOBS["daily_maintenance"]
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute(sql, maintenance.job_params("daily_maintenance"))
        summary = cursor.fetchone()[0]
    return json.loads(summary) if isinstance(summary, str) else summary


def _archived(caller=None, user_id=None) -> list[int]:
    """Ids of the archived events ``caller`` (None: the owner, no context) reads, oldest first."""
    sql = "SELECT id FROM archived_audit_logs(%s, NULL, NULL) ORDER BY created_at, id"
    if caller is None:
        return [row[0] for row in _rows(sql, [user_id])]
    with transaction.atomic(), rls.user_context(caller):
        return [row[0] for row in _rows(sql, [user_id])]


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def test_old_events_come_back_whole_and_recent_ones_stay(user):
    staff = UserFactory(is_staff=True)
    old = [
        _event(user, 200, event_type="login_succeeded", ip="198.51.100.4", details={"n": 1}),
        _event(user, 120, event_type="password_changed", actor=staff, request_id="req-9"),
        _event(None, 95, event_type="maintenance_run", details={"job": "daily"}),
    ]
    recent = _event(user, 89)
    columns = [f.attname for f in AuditLog._meta.concrete_fields]
    before = {row["id"]: row for row in AuditLog.objects.values(*columns)}

    summary = _compress()
    assert summary == {"archived": 3, "compressed": 3, "batches": summary["batches"], "waiting": 0}
    assert summary["batches"] == _value("SELECT count(*) FROM archive.audit_log_batches") > 0

    assert list(AuditLog.objects.values_list("pk", flat=True)) == [recent.pk]
    archived = AuditLog.objects.raw(
        "SELECT * FROM archived_audit_logs(NULL, NULL, NULL) ORDER BY created_at"
    )
    after = {row.pk: {c: getattr(row, c) for c in columns} for row in archived}
    assert after == {log.pk: before[log.pk] for log in old}


def test_a_month_already_stored_gets_the_new_events_appended(user):
    first = _event(user, 100)
    _compress()
    # The same UTC month as the first event, a second later (or earlier, at a month's end).
    second = AuditLogFactory(user=user)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_logs SET created_at = CASE"
            " WHEN date_trunc('month', %s AT TIME ZONE 'UTC')"
            "    = date_trunc('month', (%s + interval '1 second') AT TIME ZONE 'UTC')"
            " THEN %s + interval '1 second' ELSE %s - interval '1 second' END WHERE id = %s",
            [first.created_at] * 4 + [second.pk],
        )
    assert _compress() == {"archived": 1, "compressed": 1, "batches": 1, "waiting": 0}
    # One batch: the month of the user's bucket of users.
    assert _rows("SELECT bucket, row_count FROM archive.audit_log_batches") == [(user.pk % 64, 2)]
    assert sorted(_archived(user_id=user.pk)) == [first.pk, second.pk]


def test_batches_are_bounded_and_take_the_oldest_first(user):
    events = [_event(user, 100 + n) for n in range(5)]  # newest first
    assert _compress(max_rows=2) == {
        "archived": 2,
        "compressed": 2,
        "batches": _value("SELECT count(*) FROM archive.audit_log_batches"),
        "waiting": 3,
    }
    assert _archived(user_id=user.pk) == [events[4].pk, events[3].pk]
    assert _compress(max_rows=0)["compressed"] == 0
    assert _compress(max_rows=10)["waiting"] == 0
    assert AuditLog.objects.count() == 0
    assert sorted(_archived(user_id=user.pk)) == sorted(e.pk for e in events)


def test_events_waiting_uncompressed_in_the_old_archive_go_first(user):
    """cleanup_old_audit_logs (the command) still moves events to audit_logs_archive as they
    are; they are read back meanwhile and compressed by the next run before younger ones."""
    legacy = _event(user, 30)
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT cleanup_old_audit_logs(7)")
    assert _archived(user_id=user.pk) == [legacy.pk]
    older = _event(user, 100)
    assert _compress(max_rows=1) == {"archived": 0, "compressed": 1, "batches": 1, "waiting": 1}
    assert _value("SELECT count(*) FROM audit_logs_archive") == 0
    assert _compress()["archived"] == 1
    assert _archived(user_id=user.pk) == [older.pk, legacy.pk]


def test_daily_maintenance_takes_the_age_and_the_bound_from_the_settings(user):
    for days in (40, 50, 60):
        _event(user, days)
    with override_settings(AUDIT_COMPRESS_AFTER_DAYS=45, AUDIT_COMPRESS_ROWS_PER_RUN=1):
        summary = _daily()
    assert (summary["audit_logs_archived"], summary["audit_rows_waiting"]) == (1, 1)
    assert _daily()["audit_logs_archived"] == 0  # 90 days by default
    assert AuditLog.objects.count() == 2


def test_a_month_of_events_is_stored_in_a_fraction_of_its_size(user):
    for n in range(60):
        _event(
            user,
            100 + n / 5,
            event_type="login_succeeded",
            ip="203.0.113.9",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari",
            request_id=f"{n:032x}",
            details={"method": "password", "remember": True},
        )
    _compress()
    stored, text = _rows(
        "SELECT sum(pg_column_size(rows)), sum(octet_length(rows::text))"
        " FROM archive.audit_log_batches"
    )[0]
    assert stored * 3 < text  # pglz: compressed at least three times


def test_each_reads_their_own_archived_events_and_staff_all(user):
    other = UserFactory()
    staff = UserFactory(is_staff=True)
    mine, theirs = _event(user, 100), _event(other, 100)
    _compress()

    assert _archived(user, user_id=user.pk) == [mine.pk]
    assert _archived(other, user_id=other.pk) == [theirs.pk]
    assert sorted(_archived(staff)) == sorted([mine.pk, theirs.pk])
    assert _archived(staff, user_id=other.pk) == [theirs.pk]
    for caller, asked in ((user, other.pk), (user, None), (None, user.pk)):
        identity = rls.Identity(user_id=caller.pk if caller else None)
        with (
            pytest.raises(DatabaseError, match="their own events only"),
            transaction.atomic(),
            rls.identity_context(identity),
        ):
            _rows("SELECT id FROM archived_audit_logs(%s, NULL, NULL)", [asked])
    # The batches mix users: only staff read them directly.
    with transaction.atomic(), rls.user_context(user):
        assert _rows("SELECT count(*) FROM archive.audit_log_batches") == [(0,)]
    with transaction.atomic(), rls.user_context(staff):
        assert _rows("SELECT count(*) FROM archive.audit_log_batches") != [(0,)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO archive.audit_log_batches (month, bucket, first_at, last_at, row_count,"
        " rows) VALUES ('2026-01-01', 1, now(), now(), 1, '[]')",
        "UPDATE archive.audit_log_batches SET row_count = 1",
        "DELETE FROM archive.audit_log_batches",
        "SELECT compress_audit_logs(90, 10)",
    ],
)
def test_nobody_writes_the_compressed_archive_through_the_app_role(user, sql):
    _event(user, 100)
    _compress()
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        rls.user_context(UserFactory(is_staff=True)),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert caught.value.__cause__.sqlstate == "42501"
    assert _value("SELECT count(*) FROM archive.audit_log_batches") == 1


@pytest.mark.parametrize(("days", "rows"), [(0, 10), (3651, 10), (None, 10), (90, -1), (90, None)])
def test_compress_audit_logs_refuses_nonsense(days, rows):
    with pytest.raises(DatabaseError, match="must be between"):
        _compress(days, rows)


def test_archived_audit_logs_filters_by_time(user):
    events = [_event(user, days) for days in (300, 200, 100)]
    _compress()
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        now = cursor.fetchone()[0]
    found = _rows(
        "SELECT id FROM archived_audit_logs(%s, %s, %s)",
        [user.pk, now - timedelta(days=250), now - timedelta(days=150)],
    )
    assert found == [(events[1].pk,)]
