"""New definitions of functions/public.daily_maintenance, functions/public.monthly_maintenance.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0021_maintenance_steps"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0015_maintenance_steps"),
        ("usage", "0016_error_message"),
        ("witchcraft", "0005_sql_baseline"),
    ]

    operations = [
        DefineSQL(
            name="public.daily_maintenance",
            sha256="7e0f406c0d4c21765657ebfaa73e5582d06bd35954ea06661bdbb9cb6f20a2f9",
            previous="witchcraft.0004_functions",
            sql=r"""-- daily_maintenance(): the seed's daily job, in one transaction: a list of per-domain steps,
-- each in the live folder of the domain that owns it, run in this order. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired (these three:
--                                accounts' account_tokens_delete_expired, keys and all)
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity: agents' agent_sessions_end_idle
--   audit_logs_archived          audit events older than p_audit_compress_after_days days taken
--                                from audit_logs into the compressed archive
--   audit_rows_compressed        every event stored compressed (those, and any that waited
--                                uncompressed in audit_logs_archive), at most
--                                p_audit_rows_per_run a run: accounts' compress_audit_logs
--   audit_rows_waiting           old enough events left for the next run
--   partitions_created           ai_usage_requests partitions created for the next 3 months:
--                                usage's ensure_usage_partitions
--   usage_partitions_archived    partitions older than p_usage_archive_after_months months
--                                moved to the archive schema (at most
--                                p_usage_partitions_per_run a run: archive_usage_partitions)
--   usage_partitions_waiting     old enough partitions left for the next run
--   session_stats_rows           rows of agent_session_stats after its refresh: agents'
--                                refresh_agent_session_stats
--   usage_totals_rows            rows of ai_usage_daily_totals written (the last 3 days, and
--                                any day not covered yet: usage's refresh_usage_daily_totals)
-- account_tokens_delete_expired and agent_sessions_end_idle refuse outside the service context
-- too and, like ensure_usage_partitions, are not granted to the runtime role: this function
-- reaches them as the owner. One transaction: a step that fails undoes the steps before it.
-- Idempotent: a second run finds nothing to do (every count 0 but session_stats_rows,
-- usage_totals_rows and the waiting counts).
CREATE OR REPLACE FUNCTION public.daily_maintenance(
    p_usage_archive_after_months integer DEFAULT 12,
    p_usage_partitions_per_run integer DEFAULT 2,
    p_audit_compress_after_days integer DEFAULT 90,
    p_audit_rows_per_run integer DEFAULT 50000
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens jsonb;
    v_sessions integer;
    v_audit jsonb;
    v_partitions integer;
    v_usage_archive jsonb;
    v_stats bigint;
    v_totals integer;
    v_lock_timeout text;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'daily_maintenance: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    v_tokens := public.account_tokens_delete_expired();
    v_sessions := public.agent_sessions_end_idle();
    v_audit := public.compress_audit_logs(p_audit_compress_after_days, p_audit_rows_per_run);

    -- ensure_usage_partitions sets a 5 s lock_timeout for the rest of the transaction: keep it
    -- to the partition work.
    v_lock_timeout := current_setting('lock_timeout');
    v_partitions := public.ensure_usage_partitions(3);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    v_usage_archive := public.archive_usage_partitions(p_usage_archive_after_months,
                                                       p_usage_partitions_per_run);

    v_stats := public.refresh_agent_session_stats();
    v_totals := public.refresh_usage_daily_totals(3);

    RETURN v_tokens || jsonb_build_object(
        'sessions_ended', v_sessions,
        'audit_logs_archived', (v_audit ->> 'archived')::integer,
        'audit_rows_compressed', (v_audit ->> 'compressed')::integer,
        'audit_rows_waiting', (v_audit ->> 'waiting')::bigint,
        'partitions_created', v_partitions,
        'usage_partitions_archived', (v_usage_archive ->> 'archived')::integer,
        'usage_partitions_waiting', (v_usage_archive ->> 'waiting')::integer,
        'session_stats_rows', v_stats,
        'usage_totals_rows', v_totals);
END
$$;
REVOKE ALL ON FUNCTION public.daily_maintenance(integer, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.daily_maintenance(
    integer, integer, integer, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monthly_maintenance",
            sha256="d4fdf4ca025467e06a0d529c7743a932ece731bb19c9dbbf416b49cef8c7d4c6",
            previous="witchcraft.0004_functions",
            sql=r"""-- monthly_maintenance(): the seed's monthly job, in one transaction: a list of per-domain
-- steps, each in the live folder of the domain that owns it. Returns what it did:
--   subscriptions_canceled, subscriptions_downgraded, subscriptions_expired,
--   subscriptions_renewed, quotas_rolled, alerts_resolved
--       every ended subscription period closed and every ended quota rolled to this month, user
--       by user: billing's billing_periods_close (its keys are these)
--   report_rows
--       rows of usage_monthly_reports written for the previous calendar month: billing's
--       generate_monthly_report
-- Both steps refuse outside the service context too; billing_periods_close is not granted to
-- the runtime role: this function reaches it as the owner. One transaction: a step that fails
-- undoes the steps before it.
-- Idempotent: a second run closes and rolls nothing and finds the report right (every count 0).
CREATE OR REPLACE FUNCTION public.monthly_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_periods jsonb;
    v_this_month date;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'monthly_maintenance: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    v_periods := public.billing_periods_close();

    -- The report of the calendar month (UTC) before the transaction's now(), the now() the
    -- step above closed periods at.
    SELECT (b.period_start AT TIME ZONE 'UTC')::date INTO v_this_month
      FROM public.quota_period_bounds(now()) b;
    RETURN v_periods || jsonb_build_object(
        'report_rows',
        public.generate_monthly_report((v_this_month - interval '1 month')::date));
END
$$;
REVOKE ALL ON FUNCTION public.monthly_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monthly_maintenance() TO witchcraft_app;
""",
        ),
    ]
