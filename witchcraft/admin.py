"""The project's own tables in the admin; procrastinate's job screen taken out of it.

procrastinate's jobs hold every job's arguments (user ids, addresses, client IPs) and the
runtime role that admin pages run as has no grant on its tables. Staff see the queue's state
and the maintenance runs on /dashboard/monitoring/; operators use ``manage.py procrastinate``.
"""

from django.contrib import admin
from procrastinate.contrib.django.models import ProcrastinateJob

from witchcraft.models import MaintenanceRun
from witchcraft.platform.admin_mixins import ReadOnlyAdmin

if admin.site.is_registered(ProcrastinateJob):
    admin.site.unregister(ProcrastinateJob)


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(ReadOnlyAdmin):
    list_display = [
        "job",
        "source",
        "scheduled_for",
        "started_at",
        "duration_ms",
        "status",
        "error",
    ]
    list_filter = ["job", "status", "source"]
    date_hierarchy = "started_at"
    ordering = ["-started_at", "-id"]
