-- daily_maintenance(): the seed's daily job, in one transaction: a list of per-domain steps,
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
