-- end_password_reset_links(p_user_id): mark every still-valid reset link of the user used;
-- return how many. For whoever may change that user's password (auth.may_change_user).
CREATE OR REPLACE FUNCTION public.end_password_reset_links(p_user_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_ended integer;
BEGIN
    IF NOT auth.may_change_user(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to end the reset links of user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
    UPDATE public.password_reset_tokens t SET used_at = pg_catalog.now()
     WHERE t.user_id = p_user_id AND t.used_at IS NULL AND t.expires_at > pg_catalog.now();
    GET DIAGNOSTICS v_ended = ROW_COUNT;
    RETURN v_ended;
END
$$;
REVOKE ALL ON FUNCTION public.end_password_reset_links(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.end_password_reset_links(bigint) TO witchcraft_app;
