"""Scheduled maintenance through procrastinate: the right job at the right time (a frozen clock:
the periodic deferrer's own API with explicit timestamps), never two at once, one catch-up run
after a gap, every run recorded (counts, failure) with its audit row, and the worker's upkeep.
"""

import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from procrastinate import exceptions
from procrastinate.contrib.django import app
from procrastinate.contrib.django.utils import connector_params
from procrastinate.jobs import Status
from procrastinate.periodic import PeriodicDeferrer

from accounts.models import AuditLog
from witchcraft import tasks
from witchcraft.models import MaintenanceRun
from witchcraft.operations import jobs, maintenance
from witchcraft.platform import maintenance_command, rls
from witchcraft.testing import factories
from witchcraft.testing.queue import clear_queue, queued_jobs

pytestmark = pytest.mark.django_db

DAILY_KEYS = {
    "expired_tokens_deleted",
    "reset_tokens_deleted",
    "verification_tokens_deleted",
    "sessions_ended",
    "audit_logs_archived",
    "audit_rows_compressed",
    "audit_rows_waiting",
    "partitions_created",
    "usage_partitions_archived",
    "usage_partitions_waiting",
    "session_stats_rows",
    "usage_totals_rows",
}
MONTHLY_KEYS = {
    "subscriptions_canceled",
    "subscriptions_downgraded",
    "subscriptions_expired",
    "subscriptions_renewed",
    "quotas_rolled",
    "alerts_resolved",
    "report_rows",
}


def _at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def _deferrer() -> PeriodicDeferrer:
    """A deferrer as a worker builds one when it starts (nothing deferred yet by it)."""
    return PeriodicDeferrer(registry=app.periodic_registry, **app.periodic_defaults)


def _running_deferrer(*, since: float) -> PeriodicDeferrer:
    """A deferrer of a worker that has been running, its last look at the clock at ``since``."""
    deferrer = _deferrer()
    deferrer.last_defers = {key: int(since) for key in app.periodic_registry.periodic_tasks}
    return deferrer


def _due(deferrer: PeriodicDeferrer, at: float) -> list[tuple[str, datetime]]:
    return sorted(
        (task.task.name, datetime.fromtimestamp(slot, UTC))
        for task, slot in deferrer.get_previous_tasks(at=at)
    )


def _defer(deferrer: PeriodicDeferrer, at: float, *names: str) -> None:
    """Defer the slots due at ``at`` of the tasks ``names``, as the worker's deferrer does."""
    due = [
        (task, slot) for task, slot in deferrer.get_previous_tasks(at=at) if task.task.name in names
    ]
    async_to_sync(deferrer.defer_jobs)(due)


# --- the schedules ----------------------------------------------------------------------------


EVERY_MINUTE = (
    "refresh_usage_today",
    "release_quota_reservations",
    "check_staff_notifications",
    "backup_wal",
)


def test_the_schedules_come_from_the_settings(settings):
    crons = {task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()}
    assert crons["daily_maintenance"] == settings.DAILY_MAINTENANCE_CRON == "0 2 * * *"
    assert crons["monthly_maintenance"] == settings.MONTHLY_MAINTENANCE_CRON == "0 0 1 * *"
    assert crons["send_alert_mails"] == "*/10 * * * *"
    assert crons["refresh_usage_today"] == "* * * * *"
    assert crons["release_quota_reservations"] == "* * * * *"
    assert crons["backup_wal"] == "* * * * *"
    assert crons["backup_logical"] == settings.BACKUP_LOGICAL_CRON == "0 1 * * *"
    assert crons["backup_base"] == settings.BACKUP_BASE_CRON == "30 1 * * *"
    assert crons["backup_drill"] == settings.BACKUP_DRILL_CRON == "0 4 * * 0"


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        # 02:00 UTC every day: daily maintenance (and the 10-minute sweeps).
        (
            (2026, 3, 5, 2, 0, 0),
            {"daily_maintenance", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
        # Midnight UTC on the 1st: monthly maintenance, not the daily one.
        (
            (2026, 4, 1, 0, 0, 0),
            {"monthly_maintenance", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
        ((2026, 3, 5, 1, 59, 0), set(EVERY_MINUTE)),
        # Backups: the logical dump at 01:00, the base backup at 01:30, the drill on Sundays.
        (
            (2026, 3, 5, 1, 0, 0),
            {"backup_logical", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
        (
            (2026, 3, 5, 1, 30, 0),
            {"backup_base", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
        ((2026, 3, 5, 4, 0, 0), {"send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE}),
        (
            (2026, 3, 8, 4, 0, 0),
            {"backup_drill", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
        ((2026, 3, 5, 2, 5, 0), {"retry_stalled_jobs", *EVERY_MINUTE}),
        (
            (2026, 3, 5, 3, 30, 0),
            {"prune_finished_jobs", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
        # The 1st at 02:00: the day's run, no second monthly one.
        (
            (2026, 4, 1, 2, 0, 0),
            {"daily_maintenance", "send_alert_mails", "retry_stalled_jobs", *EVERY_MINUTE},
        ),
    ],
)
def test_the_right_job_is_due_at_the_right_time(moment, due):
    at = _at(*moment)
    found = _due(_running_deferrer(since=at - 59), at)
    assert {name for name, _ in found} == due
    assert all(slot == datetime(*moment, tzinfo=UTC) for _, slot in found)


def test_the_worker_sleeps_until_the_next_slot():
    deferrer = _deferrer()
    # Every minute: today's usage totals (refresh_usage_today).
    assert deferrer.get_next_tick(at=_at(2026, 3, 5, 1, 56, 0)) == 60
    assert deferrer.get_next_tick(at=_at(2026, 3, 5, 2, 0, 1)) == 60 - 1


def test_a_deferred_slot_is_one_job_with_its_locks_and_its_time_only():
    at = _at(2026, 3, 5, 2, 0, 30)
    _defer(_deferrer(), at, "daily_maintenance")
    (job,) = queued_jobs()
    assert job["task_name"] == "daily_maintenance"
    assert job["queue_name"] == "maintenance"
    assert job["lock"] == job["queueing_lock"] == "daily_maintenance"
    assert job["args"] == {"timestamp": int(_at(2026, 3, 5, 2, 0, 0))}
    assert job["status"] == "todo"

    # Another worker starting (or this one restarting) sees the slot already deferred.
    _defer(_deferrer(), at + 120, "daily_maintenance")
    assert len(queued_jobs()) == 1


@pytest.fixture
def empty_queue():
    clear_queue()
    yield
    clear_queue()


# A refused defer fails its INSERT: these tests commit, as a worker does (a failed statement
# would spoil a test's enclosing transaction).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_queueing_lock_refuses_a_second_waiting_job(empty_queue):
    _defer(_deferrer(), _at(2026, 3, 5, 2, 0, 30), "daily_maintenance")
    # The next day's slot comes while the first job still waits (no worker ran it).
    _defer(_deferrer(), _at(2026, 3, 6, 2, 0, 30), "daily_maintenance")
    assert [job["args"]["timestamp"] for job in queued_jobs()] == [int(_at(2026, 3, 5, 2))]
    # The same refusal for a job deferred by hand.
    with pytest.raises(exceptions.AlreadyEnqueued):
        app.configure_task("daily_maintenance").defer(timestamp=int(_at(2026, 3, 7, 2)))


def test_a_second_worker_cannot_run_it_while_one_does():
    manager = app.job_manager
    first, second = (async_to_sync(manager.register_worker)() for _ in range(2))
    _defer(_deferrer(), _at(2026, 3, 5, 2, 0, 30), "daily_maintenance")
    running = async_to_sync(manager.fetch_job)(queues=["maintenance"], worker_id=first)
    assert running.task_name == "daily_maintenance"
    # Running, it no longer holds the queueing lock: the next slot may wait behind it...
    _defer(_deferrer(), _at(2026, 3, 6, 2, 0, 30), "daily_maintenance")
    assert [job["status"] for job in queued_jobs()] == ["doing", "todo"]
    # ...but no other worker takes it while the first runs (the lock).
    assert async_to_sync(manager.fetch_job)(queues=["maintenance"], worker_id=second) is None
    async_to_sync(manager.finish_job)(job=running, status=Status.SUCCEEDED, delete_job=False)
    taken = async_to_sync(manager.fetch_job)(queues=["maintenance"], worker_id=second)
    assert taken.id == queued_jobs()[1]["id"] != running.id
    assert queued_jobs()[1]["args"] == {"timestamp": int(_at(2026, 3, 6, 2))}


# --- catching up --------------------------------------------------------------------------------


def test_a_worker_back_after_days_defers_the_last_missed_slot_of_each_job_once():
    # Down from 3 March to 7 March 10:00: the daily slots of the 4th to the 7th, and the
    # monthly one of the 1st, were missed.
    due = _due(_deferrer(), _at(2026, 3, 7, 10, 0, 0))
    assert ("daily_maintenance", datetime(2026, 3, 7, 2, tzinfo=UTC)) in due
    assert ("monthly_maintenance", datetime(2026, 3, 1, tzinfo=UTC)) in due
    assert [name for name, _ in due].count("daily_maintenance") == 1
    assert [name for name, _ in due].count("monthly_maintenance") == 1


@pytest.mark.parametrize(
    ("back_at", "daily_slot", "monthly_slot"),
    [
        # A minute before the next run: the daily one is a day late, still caught up.
        ((2026, 3, 5, 1, 59, 0), (2026, 3, 4, 2), (2026, 3, 1)),
        # The last day of a 31-day month: the monthly run of the 1st is still caught up.
        ((2026, 3, 31, 23, 59, 0), (2026, 3, 31, 2), (2026, 3, 1)),
    ],
)
def test_the_catch_up_window_is_a_day_for_the_daily_job_and_a_month_for_the_monthly_one(
    back_at, daily_slot, monthly_slot
):
    due = dict(_due(_deferrer(), _at(*back_at)))
    assert due["daily_maintenance"] == datetime(*daily_slot, tzinfo=UTC)
    assert due["monthly_maintenance"] == datetime(*monthly_slot, tzinfo=UTC)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_that_stalled_over_several_slots_queues_one_job(empty_queue):
    """A worker process frozen for three days (a suspended machine) wakes up with three daily
    slots to defer: the first is queued, the queueing lock refuses the others."""
    deferrer = _running_deferrer(since=_at(2026, 3, 3, 12, 0, 0))
    at = _at(2026, 3, 6, 12, 0, 0)
    slots = [slot for name, slot in _due(deferrer, at) if name == "daily_maintenance"]
    assert len(slots) == 3
    deferrer = _running_deferrer(since=_at(2026, 3, 3, 12, 0, 0))
    _defer(deferrer, at, "daily_maintenance")
    assert len(queued_jobs("daily_maintenance")) == 1


def test_a_slot_already_covered_by_a_later_run_does_nothing():
    """Several missed slots running one after the other still give one run: a slot covered by
    a successful run that started after it is skipped (and so is a slot after which an
    operator ran the command)."""
    now = datetime.now(UTC)
    first = maintenance.maintenance_run(
        job="daily_maintenance", source="schedule", scheduled_for=now - timedelta(days=2)
    )
    assert set(first) == DAILY_KEYS
    later_slot = maintenance.maintenance_run(
        job="daily_maintenance", source="schedule", scheduled_for=now - timedelta(days=1)
    )
    assert later_slot is None
    assert MaintenanceRun.objects.count() == 1
    # A slot after the last run is not covered.
    assert maintenance.maintenance_run(
        job="daily_maintenance", source="schedule", scheduled_for=datetime.now(UTC)
    )
    assert MaintenanceRun.objects.count() == 2


def test_a_failed_run_does_not_cover_its_slot(monkeypatch):
    slot = datetime.now(UTC) - timedelta(hours=1)
    monkeypatch.setitem(maintenance.JOBS, "daily_maintenance", "SELECT cleanup_old_audit_logs(0)")
    with pytest.raises(maintenance.MaintenanceFailed):
        maintenance.maintenance_run(job="daily_maintenance", source="schedule", scheduled_for=slot)
    monkeypatch.undo()
    summary = maintenance.maintenance_run(
        job="daily_maintenance", source="schedule", scheduled_for=slot
    )
    assert set(summary) == DAILY_KEYS


# --- recording ----------------------------------------------------------------------------------


def test_a_run_records_when_how_long_and_the_counts_with_an_audit_row(user):
    factories.AgentSessionFactory(user=user)
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    summary = maintenance.maintenance_run(
        job="daily_maintenance", source="schedule", scheduled_for=slot, queue_job_id=42
    )
    run = MaintenanceRun.objects.get()
    assert run.job == "daily_maintenance"
    assert run.source == "schedule"
    assert run.scheduled_for == slot
    assert run.status == "succeeded"
    assert run.summary == summary and set(summary) == DAILY_KEYS
    assert run.summary["session_stats_rows"] == 1
    assert run.error == ""
    assert run.queue_job_id == 42
    assert run.started_at <= run.finished_at
    assert run.duration_ms == pytest.approx(
        (run.finished_at - run.started_at).total_seconds() * 1000, abs=1
    )
    entry = AuditLog.objects.get(event_type="maintenance_run")
    assert entry.severity == "info"
    assert entry.target_type == "maintenance_run" and entry.target_id == str(run.pk)
    assert entry.details["job"] == "daily_maintenance"
    assert entry.details["status"] == "succeeded"
    assert entry.details["counts"] == summary
    assert entry.request_id.startswith("job-")


def test_a_failed_run_is_recorded_with_its_one_line_error_and_its_work_undone(monkeypatch):
    # A real failure of a real function (days below one are refused), in place of the job's SQL.
    monkeypatch.setitem(maintenance.JOBS, "daily_maintenance", "SELECT cleanup_old_audit_logs(0)")
    with pytest.raises(maintenance.MaintenanceFailed) as caught:
        maintenance.maintenance_run(job="daily_maintenance", source="command")
    message = "cleanup_old_audit_logs: days must be at least 1, not 0"
    assert str(caught.value) == f"daily_maintenance: {message}"
    run = MaintenanceRun.objects.get()
    assert run.status == "failed"
    assert run.error == message
    assert run.summary == {}
    assert run.finished_at is not None and run.duration_ms >= 0
    entry = AuditLog.objects.get(event_type="maintenance_run")
    assert entry.severity == "warning"
    assert entry.details["status"] == "failed"
    assert entry.details["error"] == message
    assert _role() == "none"  # the service context was left


def _role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('role')")
        return cursor.fetchone()[0]


def test_an_error_line_is_one_short_line():
    error = maintenance_command.error_line(
        ValueError("first line\nsecond line\twith a tab " + "x" * 900)
    )
    assert "\n" not in error and len(error) == maintenance_command.ERROR_LIMIT
    assert error.startswith("ValueError: first line second line with a tab")


def test_a_run_left_running_by_a_dead_process_is_closed_as_interrupted():
    started = datetime.now(UTC) - timedelta(hours=5)
    dead = MaintenanceRun.objects.create(
        job="monthly_maintenance", source="schedule", started_at=started
    )
    summary = maintenance.maintenance_run(job="monthly_maintenance", source="command")
    assert set(summary) == MONTHLY_KEYS
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.error == maintenance.INTERRUPTED
    assert dead.finished_at is not None
    assert MaintenanceRun.objects.filter(status="succeeded").count() == 1
    assert AuditLog.objects.filter(event_type="maintenance_run").count() == 2


def test_the_commands_record_their_runs_and_a_dry_run_records_nothing():
    call_command("daily_maintenance", stdout=StringIO())
    call_command("monthly_maintenance", "--json", stdout=StringIO())
    call_command("daily_maintenance", "--dry-run", stdout=StringIO())
    runs = list(MaintenanceRun.objects.order_by("id").values_list("job", "source", "status"))
    assert runs == [
        ("daily_maintenance", "command", "succeeded"),
        ("monthly_maintenance", "command", "succeeded"),
    ]
    assert AuditLog.objects.filter(event_type="maintenance_run").count() == 2


def test_a_run_while_another_holds_the_job_is_refused_in_one_line():
    """A worker's run (or a command) elsewhere holds the job's advisory lock: a command says
    so and exits non-zero, and nothing is recorded."""
    with psycopg.connect(**connector_params(), autocommit=True) as other:
        other_pid = other.info.backend_pid
        other.execute(
            "SELECT pg_advisory_lock(hashtext('witchcraft.maintenance'), hashtext(%s))",
            ["daily_maintenance"],
        )
        with pytest.raises(maintenance.MaintenanceBusy):
            maintenance.maintenance_run(job="daily_maintenance", source="command")
        with pytest.raises(CommandError) as caught:
            call_command("daily_maintenance", stdout=StringIO())
        # The other job is free.
        assert maintenance.maintenance_run(job="monthly_maintenance", source="command")
    assert str(caught.value) == (
        "daily_maintenance: another run is in progress (a worker's or a command's)"
    )
    assert "\n" not in str(caught.value)
    assert not MaintenanceRun.objects.filter(job="daily_maintenance").exists()
    # Released with that connection (once its server process has ended: the client does not
    # wait for that): the job runs again.
    _wait_until_ended(other_pid)
    assert maintenance.maintenance_run(job="daily_maintenance", source="command")


def _wait_until_ended(pid: int) -> None:
    """Wait (at most 30 s) for the server process ``pid`` to end."""
    with connection.cursor() as cursor:
        for _ in range(300):
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # a fresh view in this transaction
            cursor.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)", [pid])
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.1)
    raise AssertionError(f"server process {pid} still runs")


def test_a_failing_command_exits_with_one_line(monkeypatch):
    monkeypatch.setitem(maintenance.JOBS, "monthly_maintenance", "SELECT cleanup_old_audit_logs(0)")
    with pytest.raises(CommandError) as caught:
        call_command("monthly_maintenance", stdout=StringIO())
    assert str(caught.value) == (
        "monthly_maintenance: cleanup_old_audit_logs: days must be at least 1, not 0"
    )


# --- maintenance_runs: row-level security -------------------------------------------------------


def _as(context, sql: str, params=()):
    """Run ``sql`` in ``context()`` (a row-level-security context), in its own savepoint."""
    with transaction.atomic(), context(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def _user(who):
    return lambda: rls.user_context(who)


def test_staff_read_the_runs_and_only_the_service_context_writes_them(user):
    staff = factories.UserFactory(is_staff=True)
    maintenance.maintenance_run(job="daily_maintenance", source="command")
    count = "SELECT count(*) FROM maintenance_runs"
    assert _as(_user(staff), count) == [(1,)]
    assert _as(_user(user), count) == [(0,)]
    assert _as(_user(None), count) == [(0,)]
    insert = "INSERT INTO maintenance_runs (job, source) VALUES ('daily_maintenance', 'command')"
    for who in (staff, user, None):
        with pytest.raises(DatabaseError) as caught:
            _as(_user(who), insert)
        assert caught.value.__cause__.sqlstate == "42501"
    # Staff cannot rewrite history: the update finds no row it may change.
    assert _as(_user(staff), "UPDATE maintenance_runs SET error = 'x'") == 0
    assert _as(rls.service_context, insert) == 1
    # Nobody deletes a run, but the service prunes the every-minute WAL check's runs of over a
    # day ago (witchcraft.operations.pitr.jobs): those, and nothing else.
    old_check = (
        "INSERT INTO maintenance_runs (job, source, started_at, finished_at, status)"
        " VALUES ('backup_wal', 'schedule', now() - interval '%s hours',"
        " now() - interval '%s hours', 'succeeded')"
    )
    _as(rls.service_context, old_check % (25, 25))
    _as(rls.service_context, old_check % (23, 23))
    for context in (_user(staff), _user(user), _user(None)):
        assert _as(context, "DELETE FROM maintenance_runs") == 0
    assert _as(rls.service_context, "DELETE FROM maintenance_runs") == 1
    assert _as(
        _user(staff), "SELECT job, count(*) FROM maintenance_runs GROUP BY 1 ORDER BY 1"
    ) == [
        ("backup_wal", 1),
        ("daily_maintenance", 2),
    ]


def test_the_job_queue_summary_is_for_staff(user):
    with pytest.raises(DatabaseError, match="monitoring is for staff"):
        _as(_user(user), "SELECT * FROM monitoring_job_queue()")
    staff = factories.UserFactory(is_staff=True)
    with transaction.atomic(), rls.user_context(staff):
        queue = jobs.job_queue()
    assert queue["status"] == "none" and queue["workers"] == 0


# --- the worker -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_runs_the_deferred_slot_and_records_it(empty_queue):
    now = datetime.now(UTC).timestamp()
    _defer(_deferrer(), now, "daily_maintenance", "monthly_maintenance")
    deferred = {job["task_name"]: job for job in queued_jobs()}
    assert set(deferred) == {"daily_maintenance", "monthly_maintenance"}

    jobs.run_due_jobs()

    runs = {run.job: run for run in MaintenanceRun.objects.all()}
    assert set(runs) == {"daily_maintenance", "monthly_maintenance"}
    for name, run in runs.items():
        slot = datetime.fromtimestamp(deferred[name]["args"]["timestamp"], UTC)
        assert run.source == "schedule" and run.scheduled_for == slot
        assert run.status == "succeeded"
        assert run.queue_job_id == deferred[name]["id"]
    assert set(runs["daily_maintenance"].summary) == DAILY_KEYS
    assert set(runs["monthly_maintenance"].summary) == MONTHLY_KEYS
    assert AuditLog.objects.filter(event_type="maintenance_run").count() == 2
    assert queued_jobs() == []  # jobs that succeed are deleted


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_failing_scheduled_run_is_recorded_and_retried_later(empty_queue, monkeypatch):
    monkeypatch.setitem(maintenance.JOBS, "daily_maintenance", "SELECT cleanup_old_audit_logs(0)")
    _defer(_deferrer(), datetime.now(UTC).timestamp(), "daily_maintenance")

    jobs.run_due_jobs()

    run = MaintenanceRun.objects.get()
    assert run.status == "failed"
    assert run.error == "cleanup_old_audit_logs: days must be at least 1, not 0"
    (job,) = queued_jobs()
    assert job["status"] == "todo" and job["attempts"] == 1
    retry_in = job["scheduled_at"] - datetime.now(UTC)
    assert timedelta(minutes=9) < retry_in <= timedelta(minutes=10)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_job_left_running_by_a_dead_worker_is_put_back(empty_queue):
    manager = app.job_manager
    dead = async_to_sync(manager.register_worker)()
    _defer(_deferrer(), datetime.now(UTC).timestamp(), "daily_maintenance")
    async_to_sync(manager.fetch_job)(queues=["maintenance"], worker_id=dead)
    with connection.cursor() as cursor:  # the worker died an hour ago
        cursor.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
        )
    app.configure_task("retry_stalled_jobs").defer(timestamp=int(datetime.now(UTC).timestamp()))

    jobs.run_due_jobs(queues=["upkeep"])
    (job,) = queued_jobs("daily_maintenance")
    assert job["status"] == "todo" and job["attempts"] == 1

    jobs.run_due_jobs(queues=["maintenance"])
    assert MaintenanceRun.objects.get().status == "succeeded"
    assert tasks.STALLED_JOBS_CRON == "*/5 * * * *"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_runs_the_backup_jobs_it_may_and_records_them(empty_queue, settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_SCHEDULE, settings.PITR_ENABLED = True, False
    now = datetime.now(UTC).timestamp()
    _defer(_deferrer(), now, "backup_logical", "backup_wal", "backup_base", "backup_drill")
    assert {job["task_name"] for job in queued_jobs()} == {
        "backup_logical",
        "backup_wal",
        "backup_base",
        "backup_drill",
    }

    jobs.run_due_jobs()

    # With point-in-time recovery off, only the logical dump runs: recorded, its file written.
    (run,) = MaintenanceRun.objects.all()
    assert (run.job, run.source, run.status) == ("backup_logical", "schedule", "succeeded")
    assert (settings.BACKUP_DIR / run.summary["file"]).is_file()
    assert run.summary["tables"] > 40 and run.summary["pruned"] == 0
    assert queued_jobs() == []

    # A worker told not to run backups (another host's does) runs none.
    settings.BACKUP_SCHEDULE = False
    _defer(_deferrer(), now + 86400, "backup_logical")
    jobs.run_due_jobs()
    assert MaintenanceRun.objects.count() == 1
