"""Daily maintenance (2 AM): tokens, inactive sessions, audit archive, partitions, statistics."""

from witchcraft.operations.maintenance import JOBS, JobCommand


class Command(JobCommand):
    help = (
        "Run daily_maintenance(): delete expired and long-revoked access tokens and used or "
        "expired reset/verification tokens, end agent sessions inactive for 24 hours, store "
        "audit events older than AUDIT_COMPRESS_AFTER_DAYS compressed, create the usage "
        "partitions of the next 3 months, move usage partitions past "
        "USAGE_ARCHIVE_AFTER_MONTHS to the archive schema, refresh agent_session_stats and "
        "the all-users usage totals of the last 3 days."
    )
    sql = JOBS["daily_maintenance"]
    keys = (
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
    )
