"""Tables of the project itself (not of a domain app)."""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class MaintenanceRun(models.Model):
    """One run of a maintenance job (``daily_maintenance``, ``monthly_maintenance``, and the
    backups' ``backup_wal``, ``backup_base``, ``backup_logical``, ``backup_drill``): by the
    scheduler or by its command, when, how long, what it changed, or why it failed.

    Created by ``witchcraft/sql/0002_maintenance_runs.sql`` (row-level security: staff read,
    only the service context writes, nobody deletes); written by
    ``witchcraft.operations.maintenance``.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Source(models.TextChoices):
        SCHEDULE = "schedule"  # the worker, at a slot of the job's cron
        COMMAND = "command"  # manage.py daily_maintenance / monthly_maintenance

    job = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source)
    scheduled_for = models.DateTimeField(null=True, blank=True)  # the slot; None for a command
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.RUNNING)
    summary = models.JSONField(default=dict, blank=True)  # the counts the SQL function returned
    error = models.TextField(blank=True, default="")  # one line, the server's primary message
    queue_job_id = models.BigIntegerField(null=True, blank=True)  # the procrastinate job

    class Meta:
        db_table = "maintenance_runs"
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["job", "-started_at"], name="maintenance_runs_job_started"),
            models.Index(fields=["-started_at"], name="maintenance_runs_started"),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class NotificationState(models.Model):
    """The state last notified to staff of one check: a monitoring alert
    (``monitoring:<slug>``, ``ok`` or ``firing``) or a quota alert already told
    (``usage_alert:<id>``, ``notified``).

    Created by ``witchcraft/sql/0007_staff_notifications.sql`` (row-level security: staff read,
    only the service context writes); written by ``witchcraft.operations.notifications``.
    """

    class State(models.TextChoices):
        OK = "ok"
        FIRING = "firing"
        NOTIFIED = "notified"

    check_key = models.CharField(max_length=64, primary_key=True)
    state = models.CharField(max_length=16, choices=State)
    measured = models.CharField(max_length=500, blank=True, default="")
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "notification_states"
        indexes = [models.Index(fields=["changed_at"], name="notification_states_changed")]

    def __str__(self) -> str:
        return f"{self.check_key} {self.state}"


class StaffNotification(models.Model):
    """One notification to staff (a check firing or resolved, quota alerts raised, a test),
    the channels it was queued for and when each delivered.

    Created by ``witchcraft/sql/0007_staff_notifications.sql``; written by
    ``witchcraft.operations.notifications``.
    """

    class State(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"
        RAISED = "raised"  # new quota alerts
        TEST = "test"  # manage.py notify_test

    id = models.BigAutoField(primary_key=True)
    check_key = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State)
    title = models.CharField(max_length=200)
    body = models.TextField()
    channels = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    created_at = models.DateTimeField()
    mail_sent_at = models.DateTimeField(null=True, blank=True)
    webhook_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        db_table = "staff_notifications"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at"], name="staff_notifications_created")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.check_key} {self.state}"
