"""Move old audit logs into audit_logs_archive (daily_maintenance does it at 90 days)."""

from witchcraft.platform.maintenance_command import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Run cleanup_old_audit_logs(days): move audit logs older than --days into the archive."
    sql = "SELECT jsonb_build_object('audit_logs_archived', public.cleanup_old_audit_logs(%s))"
    keys = ("audit_logs_archived",)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--days",
            type=int,
            default=90,
            help="archive the events older than this many days (at least 1; default 90)",
        )

    def get_params(self, options):
        return [options["days"]]
