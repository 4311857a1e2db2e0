-- users_search(p_text): the ids of the users whose email or name contains p_text, ignoring
-- case; % and _ are plain characters. For the staff user directory: staff and the service
-- context only (42501 otherwise). SECURITY DEFINER so that the trigram indexes
-- users_email_trgm and users_full_name_trgm serve the search: under row-level security the
-- planner may not use an index for LIKE (not leakproof) ahead of the policies.
CREATE OR REPLACE FUNCTION public.users_search(p_text text) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_pattern text;
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'users_search: staff only' USING ERRCODE = '42501';
    END IF;
    IF coalesce(p_text, '') = '' THEN
        RETURN;
    END IF;
    v_pattern := '%' || replace(replace(replace(lower(p_text), '\', '\\'), '%', '\%'), '_', '\_')
                 || '%';
    RETURN QUERY
    SELECT u.id FROM public.users u
     WHERE u.email LIKE v_pattern OR lower(u.full_name) LIKE v_pattern;
END
$$;
REVOKE ALL ON FUNCTION public.users_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.users_search(text) TO witchcraft_app;
