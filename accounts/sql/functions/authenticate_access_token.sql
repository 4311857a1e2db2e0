-- Bearer-token authentication (accounts.tokens.token_authenticate), used by every API call.
--
-- The check happens before anyone is known, so it is a SECURITY DEFINER function: the token is
-- the credential, anyone may present one, and the function reveals nothing but "this token is
-- good, for this user". Only SHA-256 digests reach the database (idx_access_tokens_token_hash).
--
-- authenticate_access_token(p_token_hash, p_ip, p_user_agent) returns one row (user id, token
-- id) when the token is known, not revoked, not expired (expires_at <= now refuses) and its user
-- is active and not deleted; no row otherwise.
--
-- * last_used_at / last_used_ip are written at most once a minute per token: an API client
--   making many calls costs one write a minute, not one per call. The write skips a row another
--   transaction holds (SKIP LOCKED), so parallel calls with one token never wait on each other
--   for the bookkeeping.
-- * An expired token presented is audited (token_expired) once per token: the token row is
--   locked (SKIP LOCKED: whoever holds it is writing the same notice), and a notice already in
--   audit_logs (idx by user_id) means none is written again.
-- * "Now" is statement_timestamp(), not the transaction's start: a request's transaction may
--   have started a moment before the token is checked.
CREATE OR REPLACE FUNCTION public.authenticate_access_token(
    p_token_hash text,
    p_ip inet DEFAULT NULL,
    p_user_agent text DEFAULT ''
) RETURNS TABLE (out_user_id bigint, out_token_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := pg_catalog.statement_timestamp();
    v_token record;
BEGIN
    SELECT t.id, t.user_id, t.name, t.prefix, t.expires_at, t.revoked_at, t.last_used_at,
           (u.is_active AND u.deleted_at IS NULL) AS user_ok
      INTO v_token
      FROM public.access_tokens t
      JOIN public.users u ON u.id = t.user_id
     WHERE t.token_hash = p_token_hash;
    IF NOT FOUND OR v_token.revoked_at IS NOT NULL THEN
        RETURN;
    END IF;

    IF v_token.expires_at <= v_now THEN
        PERFORM 1 FROM public.access_tokens t WHERE t.id = v_token.id FOR UPDATE SKIP LOCKED;
        IF FOUND AND NOT EXISTS (
            SELECT 1 FROM public.audit_logs a
             WHERE a.user_id = v_token.user_id AND a.event_type = 'token_expired'
               AND a.target_type = 'access_token' AND a.target_id = v_token.id::text
        ) THEN
            INSERT INTO public.audit_logs (created_at, user_id, actor_id, event_type, severity,
                                           ip, user_agent, request_id, target_type, target_id,
                                           details)
            VALUES (pg_catalog.now(), v_token.user_id, auth.actor_id(), 'token_expired', 'info',
                    coalesce(p_ip, nullif(pg_catalog.current_setting('app.ip', true), '')::inet),
                    pg_catalog.left(coalesce(p_user_agent, ''), 300),
                    coalesce(pg_catalog.current_setting('app.request_id', true), ''),
                    'access_token', v_token.id::text,
                    pg_catalog.jsonb_build_object('name', v_token.name,
                                                  'prefix', v_token.prefix,
                                                  'expired_at', v_token.expires_at));
        END IF;
        RETURN;
    END IF;

    IF NOT v_token.user_ok THEN
        RETURN;
    END IF;

    IF v_token.last_used_at IS NULL OR v_token.last_used_at <= v_now - interval '1 minute' THEN
        UPDATE public.access_tokens t
           SET last_used_at = v_now, last_used_ip = p_ip
         WHERE t.id = (SELECT l.id FROM public.access_tokens l
                        WHERE l.id = v_token.id
                          AND (l.last_used_at IS NULL
                               OR l.last_used_at <= v_now - interval '1 minute')
                          FOR UPDATE SKIP LOCKED);
    END IF;

    out_user_id := v_token.user_id;
    out_token_id := v_token.id;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.authenticate_access_token(text, inet, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.authenticate_access_token(text, inet, text) TO witchcraft_app;
