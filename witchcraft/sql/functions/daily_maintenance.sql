-- daily_maintenance(): the seed's daily job, in one transaction. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity
--   audit_logs_archived          audit events older than p_audit_compress_after_days days taken
--                                from audit_logs into the compressed archive
--   audit_rows_compressed        every event stored compressed (those, and any that waited
--                                uncompressed in audit_logs_archive), at most
--                                p_audit_rows_per_run a run: compress_audit_logs
--   audit_rows_waiting           old enough events left for the next run
--   partitions_created           ai_usage_requests partitions created for the next 3 months
--   usage_partitions_archived    partitions older than p_usage_archive_after_months months
--                                moved to the archive schema (at most
--                                p_usage_partitions_per_run a run: archive_usage_partitions)
--   usage_partitions_waiting     old enough partitions left for the next run
--   session_stats_rows           rows of agent_session_stats after its refresh
--   usage_totals_rows            rows of ai_usage_daily_totals written (the last 3 days, and
--                                any day not covered yet: refresh_usage_daily_totals)
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
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
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

    DELETE FROM public.access_tokens
     WHERE expires_at <= now()
        OR revoked_at <= now() - interval '30 days';
    GET DIAGNOSTICS v_tokens = ROW_COUNT;

    DELETE FROM public.password_reset_tokens
     WHERE used_at IS NOT NULL OR expires_at <= now();
    GET DIAGNOSTICS v_resets = ROW_COUNT;

    DELETE FROM public.email_verification_tokens
     WHERE used_at IS NOT NULL OR expires_at <= now();
    GET DIAGNOSTICS v_verifications = ROW_COUNT;

    -- ended_at = last_activity_at: the session ended when it was last used, not when we noticed
    -- (and agent_sessions_active_not_ended wants is_active false once ended_at is set).
    UPDATE public.agent_sessions
       SET is_active = false, ended_at = last_activity_at
     WHERE is_active AND last_activity_at < now() - interval '24 hours';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;

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

    RETURN jsonb_build_object(
        'expired_tokens_deleted', v_tokens,
        'reset_tokens_deleted', v_resets,
        'verification_tokens_deleted', v_verifications,
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
