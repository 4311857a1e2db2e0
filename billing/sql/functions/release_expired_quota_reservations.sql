-- release_expired_quota_reservations(): the worker's sweep, every minute. Gives back the holds
-- of every expired unsettled reservation, user by user in user order (the quota row lock first;
-- a user whose quota row is locked right now is left for the next sweep or for that user's own
-- next call, which releases lazily), then deletes settled and released reservations older than
-- p_keep_days (at most 10,000 a run). Service context or staff only. Returns
-- {"released": n, "pruned": n}.
CREATE OR REPLACE FUNCTION public.release_expired_quota_reservations(p_keep_days integer DEFAULT 7)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_user bigint;
    v_released integer := 0;
    v_pruned integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'only the service context may sweep reservations' USING ERRCODE = '42501';
    END IF;
    IF p_keep_days IS NULL OR p_keep_days < 1 THEN
        RAISE EXCEPTION 'keep days must be at least 1, got %', p_keep_days USING ERRCODE = '22023';
    END IF;
    FOR v_user IN
        SELECT DISTINCT r.user_id FROM public.quota_reservations r
         WHERE r.settled_at IS NULL AND r.released_at IS NULL AND r.expires_at <= now()
         ORDER BY r.user_id
    LOOP
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            v_released := v_released + public.quota_reservations_release_expired(v_user);
        END IF;
    END LOOP;

    DELETE FROM public.quota_reservations r
     WHERE r.id IN (
           SELECT o.id FROM public.quota_reservations o
            WHERE (o.settled_at IS NOT NULL OR o.released_at IS NOT NULL)
              AND o.expires_at < now() - make_interval(days => p_keep_days)
            LIMIT 10000);
    GET DIAGNOSTICS v_pruned = ROW_COUNT;
    RETURN jsonb_build_object('released', v_released, 'pruned', v_pruned);
END
$$;
REVOKE ALL ON FUNCTION public.release_expired_quota_reservations(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.release_expired_quota_reservations(integer) TO witchcraft_app;
