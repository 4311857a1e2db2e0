CREATE OR REPLACE FUNCTION auth.has_perm(p_app_label text, p_codename text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT auth.is_superuser() OR (
        coalesce(nullif(pg_catalog.current_setting('app.is_admin', true), '')::boolean, false)
        AND auth.actor_id() IS NULL
        AND EXISTS (
            SELECT 1
              FROM public.users u
             CROSS JOIN public.auth_permission p
              JOIN public.django_content_type ct ON ct.id = p.content_type_id
             WHERE u.id = auth.user_id() AND u.is_staff AND u.is_active AND u.deleted_at IS NULL
               AND ct.app_label = p_app_label AND p.codename = p_codename
               AND (EXISTS (SELECT 1 FROM public.users_user_permissions up
                             WHERE up.user_id = u.id AND up.permission_id = p.id)
                    OR EXISTS (SELECT 1 FROM public.users_groups ug
                                 JOIN public.auth_group_permissions gp
                                   ON gp.group_id = ug.group_id
                                WHERE ug.user_id = u.id AND gp.permission_id = p.id))))
$$;
REVOKE ALL ON FUNCTION auth.has_perm(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.has_perm(text, text) TO witchcraft_app;
