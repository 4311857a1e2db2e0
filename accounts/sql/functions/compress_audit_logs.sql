-- compress_audit_logs(p_days, p_max_rows): store at most p_max_rows audit events compressed,
-- the oldest first: every event of audit_logs_archive, and the events of audit_logs older than
-- p_days days. Returns {"archived": events taken from audit_logs, "compressed": every event
-- stored, "batches": batch rows written, "waiting": old enough events left for the next run}.
-- Service context only.
CREATE OR REPLACE FUNCTION public.compress_audit_logs(p_days integer, p_max_rows integer)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_cutoff timestamptz;
    v_from_archive integer;
    v_from_live integer;
    v_batches integer;
    v_waiting bigint;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'compress_audit_logs: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'compress_audit_logs: days must be between 1 and 3650, not %',
            coalesce(p_days::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_max_rows IS NULL OR p_max_rows NOT BETWEEN 0 AND 5000000 THEN
        RAISE EXCEPTION 'compress_audit_logs: rows per run must be between 0 and 5000000, not %',
            coalesce(p_max_rows::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_cutoff := now() - make_interval(days => p_days);

    -- The events taken this run, as audit_logs rows.
    IF pg_catalog.to_regclass('pg_temp.compress_audit_logs_taken') IS NULL THEN
        CREATE TEMPORARY TABLE compress_audit_logs_taken (LIKE public.audit_logs)
            ON COMMIT DROP;
    ELSE
        TRUNCATE compress_audit_logs_taken;
    END IF;

    WITH picked AS (
        SELECT a.id FROM public.audit_logs_archive a
         ORDER BY a.created_at, a.id LIMIT p_max_rows
    ), moved AS (
        DELETE FROM public.audit_logs_archive a USING picked WHERE a.id = picked.id
        RETURNING a.id, a.created_at, a.event_type, a.severity, a.ip, a.user_agent,
                  a.request_id, a.target_type, a.target_id, a.details, a.actor_id, a.user_id
    )
    INSERT INTO compress_audit_logs_taken
           (id, created_at, event_type, severity, ip, user_agent, request_id, target_type,
            target_id, details, actor_id, user_id)
    SELECT * FROM moved;
    GET DIAGNOSTICS v_from_archive = ROW_COUNT;

    WITH picked AS (
        SELECT a.id FROM public.audit_logs a
         WHERE a.created_at < v_cutoff
         ORDER BY a.created_at, a.id LIMIT p_max_rows - v_from_archive
    ), moved AS (
        DELETE FROM public.audit_logs a USING picked WHERE a.id = picked.id RETURNING a.*
    )
    INSERT INTO compress_audit_logs_taken SELECT * FROM moved;
    GET DIAGNOSTICS v_from_live = ROW_COUNT;

    -- One batch per month and bucket; one already stored gets the events appended (both sides
    -- are non-empty JSON arrays: '[a, b]' and '[c]' make '[a, b, c]').
    INSERT INTO archive.audit_log_batches AS b
           (month, bucket, first_at, last_at, row_count, rows)
    SELECT date_trunc('month', t.created_at AT TIME ZONE 'UTC')::date,
           public.audit_log_bucket(t.user_id),
           min(t.created_at), max(t.created_at), count(*),
           json_agg(t ORDER BY t.created_at, t.id)
      FROM compress_audit_logs_taken t
     GROUP BY 1, 2
    ON CONFLICT (month, bucket) DO UPDATE
       SET first_at = least(b.first_at, excluded.first_at),
           last_at = greatest(b.last_at, excluded.last_at),
           row_count = b.row_count + excluded.row_count,
           rows = (left(b.rows::text, -1) || ', ' || substr(excluded.rows::text, 2))::json,
           updated_at = now();
    GET DIAGNOSTICS v_batches = ROW_COUNT;

    SELECT (SELECT count(*) FROM public.audit_logs_archive)
           + (SELECT count(*) FROM public.audit_logs a WHERE a.created_at < v_cutoff)
      INTO v_waiting;
    RETURN jsonb_build_object('archived', v_from_live, 'compressed', v_from_archive + v_from_live,
                              'batches', v_batches, 'waiting', v_waiting);
END
$$;
REVOKE ALL ON FUNCTION public.compress_audit_logs(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compress_audit_logs(integer, integer) TO witchcraft_app;
