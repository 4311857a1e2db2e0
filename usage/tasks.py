"""The usage jobs of the worker (procrastinate finds each app's ``tasks.py``): today's all-users
usage totals for the staff dashboard, every minute."""

from __future__ import annotations

from procrastinate.contrib.django import app

from usage import services as usage_services
from witchcraft.platform.queues import UPKEEP_QUEUE

USAGE_TODAY_CRON = "* * * * *"


@app.periodic(cron=USAGE_TODAY_CRON, periodic_id="refresh_usage_today")
@app.task(
    name="refresh_usage_today",
    queue=UPKEEP_QUEUE,
    lock="refresh_usage_today",
    queueing_lock="refresh_usage_today",
)
def refresh_usage_today(timestamp: int) -> int:
    """Today's all-users usage totals for the staff dashboard, as of this minute
    (usage/sql/0007); the rows written."""
    return usage_services.usage_totals_refresh_today()
