-- Daily maintenance (the seed's "Maintenance Tasks", run at 2 AM by `manage.py daily_maintenance`):
-- expired tokens cleaned up, inactive agent sessions ended, old audit logs archived, the usage
-- partitions of the next months created and the session statistics refreshed.
--
-- Every function here writes across users, so it is SECURITY DEFINER (its owner bypasses RLS)
-- with a pinned search_path (pg_temp last: a caller's temporary table cannot stand in for one
-- of ours) and schema-qualified names, and runs only in the service context
-- (a command or job: witchcraft.rls.service_context, or an operator session that never switched
-- to witchcraft_app).

-- audit_logs_archive -------------------------------------------------------------------------
-- Audit events past the retention of audit_logs, moved here by cleanup_old_audit_logs(). Same
-- columns in the same order as audit_logs, plus archived_at. No foreign keys: the archive must
-- never hold a user row in place (and Django's test flush truncates users without CASCADE).
CREATE TABLE public.audit_logs_archive (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL,
    event_type varchar(64) NOT NULL,
    severity varchar(16) NOT NULL,
    ip inet,
    user_agent text NOT NULL,
    request_id varchar(64) NOT NULL,
    target_type varchar(64) NOT NULL,
    target_id varchar(64) NOT NULL,
    details jsonb NOT NULL,
    actor_id bigint,
    user_id bigint,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_archive_created_at ON public.audit_logs_archive (created_at DESC);
CREATE INDEX audit_logs_archive_user_id ON public.audit_logs_archive (user_id, created_at DESC);

-- Admins read the archive; nobody but the maintenance functions (running as owner) writes it.
ALTER TABLE public.audit_logs_archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_logs_archive FORCE ROW LEVEL SECURITY;
REVOKE ALL ON public.audit_logs_archive FROM PUBLIC;
GRANT SELECT ON public.audit_logs_archive TO witchcraft_app;
CREATE POLICY audit_logs_archive_select_admin ON public.audit_logs_archive FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- cleanup_old_audit_logs(p_days): move the audit events older than p_days days into
-- audit_logs_archive, in one statement (a row is either still in audit_logs or archived, never
-- both nor neither). Returns how many were moved. audit_logs is append-only for the app role;
-- this runs as the owner.
CREATE FUNCTION public.cleanup_old_audit_logs(p_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_moved integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'cleanup_old_audit_logs: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_days IS NULL OR p_days < 1 THEN
        RAISE EXCEPTION 'cleanup_old_audit_logs: days must be at least 1, not %',
            coalesce(p_days::text, 'NULL') USING ERRCODE = '22023';
    END IF;

    WITH moved AS (
        DELETE FROM public.audit_logs
         WHERE created_at < now() - make_interval(days => p_days)
        RETURNING *
    )
    INSERT INTO public.audit_logs_archive (id, created_at, event_type, severity, ip, user_agent,
                                           request_id, target_type, target_id, details,
                                           actor_id, user_id, archived_at)
    SELECT id, created_at, event_type, severity, ip, user_agent, request_id, target_type,
           target_id, details, actor_id, user_id, now()
      FROM moved;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved;
END
$$;
REVOKE ALL ON FUNCTION public.cleanup_old_audit_logs(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.cleanup_old_audit_logs(integer) TO witchcraft_app;

-- refresh_agent_session_stats(): recompute agent_session_stats and return its row count.
-- CONCURRENTLY (readers are never blocked; the view has a unique index) is allowed inside a
-- transaction block and inside a function: checked on PostgreSQL 15 and 18. It needs a
-- populated view, so an unpopulated one (created WITH NO DATA) is filled the plain way.
-- The view belongs to the owner of this function; the app role has no grant on it.
CREATE FUNCTION public.refresh_agent_session_stats() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'refresh_agent_session_stats: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF (SELECT ispopulated FROM pg_catalog.pg_matviews
         WHERE schemaname = 'public' AND matviewname = 'agent_session_stats') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY public.agent_session_stats;
    ELSE
        REFRESH MATERIALIZED VIEW public.agent_session_stats;
    END IF;
    SELECT count(*) INTO v_rows FROM public.agent_session_stats;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_agent_session_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_agent_session_stats() TO witchcraft_app;

-- daily_maintenance(): the seed's daily job, in one transaction. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity
--   audit_logs_archived          audit events older than 90 days moved to audit_logs_archive
--   partitions_created           ai_usage_requests partitions created for the next 3 months
--   session_stats_rows           rows of agent_session_stats after its refresh
-- Idempotent: a second run finds nothing to do (every count 0 but session_stats_rows).
CREATE FUNCTION public.daily_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
    v_sessions integer;
    v_archived integer;
    v_partitions integer;
    v_stats bigint;
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

    v_archived := public.cleanup_old_audit_logs(90);

    -- ensure_usage_partitions sets a 5 s lock_timeout for the rest of the transaction: keep it
    -- to the partition work.
    v_lock_timeout := current_setting('lock_timeout');
    v_partitions := public.ensure_usage_partitions(3);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);

    v_stats := public.refresh_agent_session_stats();

    RETURN jsonb_build_object(
        'expired_tokens_deleted', v_tokens,
        'reset_tokens_deleted', v_resets,
        'verification_tokens_deleted', v_verifications,
        'sessions_ended', v_sessions,
        'audit_logs_archived', v_archived,
        'partitions_created', v_partitions,
        'session_stats_rows', v_stats);
END
$$;
REVOKE ALL ON FUNCTION public.daily_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.daily_maintenance() TO witchcraft_app;
