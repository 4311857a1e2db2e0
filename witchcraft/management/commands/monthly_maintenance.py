"""Monthly maintenance (1st of the month, midnight UTC): subscriptions, quotas, usage report."""

from witchcraft.operations.maintenance import JobCommand


class Command(JobCommand):
    help = (
        "Run monthly_maintenance(): move subscription statuses on (cancel, downgrade, expire, "
        "renew), roll the quotas whose period ended (resolving their alerts) and store the "
        "previous month's usage report in usage_monthly_reports."
    )
    sql = "SELECT public.monthly_maintenance()"
    keys = (
        "subscriptions_canceled",
        "subscriptions_downgraded",
        "subscriptions_expired",
        "subscriptions_renewed",
        "quotas_rolled",
        "alerts_resolved",
        "report_rows",
    )
