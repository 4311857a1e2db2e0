-- cleanup_old_audit_logs(p_days): move the audit events older than p_days days into
-- audit_logs_archive, in one statement (a row is either still in audit_logs or archived, never
-- both nor neither). Returns how many were moved. audit_logs is append-only for the app role;
-- this runs as the owner.
CREATE OR REPLACE FUNCTION public.cleanup_old_audit_logs(p_days integer) RETURNS integer
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
