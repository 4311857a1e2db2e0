"""Tables of the project itself (not of a domain app)."""

from django.db import models


class MaintenanceRun(models.Model):
    """One run of a maintenance job (``daily_maintenance``, ``monthly_maintenance``): by the
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
