-- Self-service account pages: a profile row for accounts made without one, and the deletion of
-- an account by its owner.
--
-- Both are SECURITY DEFINER with search_path pinned (pg_temp last) and every name qualified: the
-- runtime role cannot insert profiles, and deleting an account writes rows it may not write
-- (users.email and is_active, subscriptions, other people's sessions never; see the caller
-- checks). Lock order as everywhere: the user_quotas row first.
-- ensure_user_profile(user): create the user's profile with the defaults when it is missing.
-- Registration (create_user_with_profile) makes one, but accounts created another way (the
-- createsuperuser command, the admin) have none, and the profile page must still save. The
-- caller is the user themself, an admin or the service context (42501 otherwise). Returns
-- whether a row was created.
CREATE OR REPLACE FUNCTION public.ensure_user_profile(p_user_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_created integer;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id AND u.deleted_at IS NULL)
    THEN
        RAISE EXCEPTION 'No such user.' USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.user_profiles (user_id, display_name, avatar_url, company, timezone,
                                      locale, preferences, created_at, updated_at)
    VALUES (p_user_id, '', '', '', 'UTC', 'en', '{}', pg_catalog.now(), pg_catalog.now())
    ON CONFLICT (user_id) DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    RETURN v_created > 0;
END
$$;
REVOKE ALL ON FUNCTION public.ensure_user_profile(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ensure_user_profile(bigint) TO witchcraft_app;
