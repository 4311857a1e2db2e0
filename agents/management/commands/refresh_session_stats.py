"""Recompute agent_session_stats (the seed's manual task; daily_maintenance does it too)."""

from witchcraft.platform.maintenance_command import MaintenanceCommand


class Command(MaintenanceCommand):
    help = (
        "Run refresh_agent_session_stats(): REFRESH MATERIALIZED VIEW CONCURRENTLY "
        "agent_session_stats (readers are not blocked), and print its row count."
    )
    sql = "SELECT jsonb_build_object('session_stats_rows', public.refresh_agent_session_stats())"
    keys = ("session_stats_rows",)
