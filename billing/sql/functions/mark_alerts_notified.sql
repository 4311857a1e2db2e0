-- mark_alerts_notified(ids): the alerts' mail went out (notified_at = now()). Service context
-- only. Returns how many were marked.
CREATE OR REPLACE FUNCTION public.mark_alerts_notified(p_alert_ids bigint[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_marked integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context marks alerts notified' USING ERRCODE = '42501';
    END IF;
    UPDATE public.usage_alerts a SET notified_at = now()
     WHERE a.id = ANY (p_alert_ids) AND a.notified_at IS NULL;
    GET DIAGNOSTICS v_marked = ROW_COUNT;
    RETURN v_marked;
END
$$;
REVOKE ALL ON FUNCTION public.mark_alerts_notified(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.mark_alerts_notified(bigint[]) TO witchcraft_app;
