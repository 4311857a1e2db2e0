-- quota_has_expired_holds(user): has the user a reservation that expired unsettled and still
-- holds quota? One probe of quota_reservations_open. A plain SQL expression (no SET clause: it
-- is inlined into its callers, which pin their search_path; only its owner may call it), so
-- the hot paths pay for the release below only when there is something to give back.
CREATE OR REPLACE FUNCTION public.quota_has_expired_holds(p_user_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.quota_reservations r
         WHERE r.user_id = p_user_id AND r.settled_at IS NULL AND r.released_at IS NULL
           AND r.expires_at <= now())
$$;
REVOKE ALL ON FUNCTION public.quota_has_expired_holds(bigint) FROM PUBLIC;
