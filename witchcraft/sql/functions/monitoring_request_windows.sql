-- monitoring_request_windows(p_now): one row per status seen in the 60 minutes before p_now
-- (now() when NULL): the requests of the last 1, 5 and 60 minutes. Rows at or after p_now are
-- not counted, so a caller can pin the clock. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_request_windows(p_now timestamptz DEFAULT NULL)
RETURNS TABLE(out_status text, out_last_1m bigint, out_last_5m bigint, out_last_60m bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT r.status::text,
           count(*) FILTER (WHERE r.created_at >= v_now - interval '1 minute'),
           count(*) FILTER (WHERE r.created_at >= v_now - interval '5 minutes'),
           count(*)
      FROM public.ai_usage_requests r
     WHERE r.created_at >= v_now - interval '60 minutes' AND r.created_at < v_now
     GROUP BY r.status
     ORDER BY r.status;
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_request_windows(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_request_windows(
    timestamp with time zone) TO witchcraft_app;
