-- archived_audit_logs(p_user_id, p_from, p_to): the archived audit events (compressed and not)
-- of a user (NULL: everyone) created in [p_from, p_to) (NULL: unbounded), as audit_logs rows,
-- unordered. A user may ask for their own events only; staff and the service context for
-- anyone's or everyone's (42501 otherwise). SECURITY DEFINER: the batches mix users.
CREATE OR REPLACE FUNCTION public.archived_audit_logs(
    p_user_id bigint, p_from timestamptz, p_to timestamptz
) RETURNS SETOF public.audit_logs
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    -- IS DISTINCT FROM: an anonymous caller (user_id NULL) is refused too.
    IF NOT (auth.is_admin() OR auth.is_service())
       AND (p_user_id IS NULL OR auth.user_id() IS DISTINCT FROM p_user_id) THEN
        RAISE EXCEPTION 'archived_audit_logs: a user reads their own events only'
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT r.*
      FROM archive.audit_log_batches b
     CROSS JOIN LATERAL json_populate_recordset(NULL::public.audit_logs, b.rows) r
     WHERE (p_user_id IS NULL OR b.bucket = public.audit_log_bucket(p_user_id))
       AND (p_from IS NULL
            OR b.month >= date_trunc('month', p_from AT TIME ZONE 'UTC')::date)
       AND (p_to IS NULL OR b.month < p_to AT TIME ZONE 'UTC')
       AND (p_user_id IS NULL OR r.user_id = p_user_id)
       AND (p_from IS NULL OR r.created_at >= p_from)
       AND (p_to IS NULL OR r.created_at < p_to)
    UNION ALL
    SELECT a.id, a.created_at, a.event_type, a.severity, a.ip, a.user_agent, a.request_id,
           a.target_type, a.target_id, a.details, a.actor_id, a.user_id
      FROM public.audit_logs_archive a
     WHERE (p_user_id IS NULL OR a.user_id = p_user_id)
       AND (p_from IS NULL OR a.created_at >= p_from)
       AND (p_to IS NULL OR a.created_at < p_to);
END
$$;
REVOKE ALL ON FUNCTION public.archived_audit_logs(
    bigint, timestamp with time zone, timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.archived_audit_logs(
    bigint, timestamp with time zone, timestamp with time zone) TO witchcraft_app;
