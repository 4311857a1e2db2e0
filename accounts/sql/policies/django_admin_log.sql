-- Row-level security of public.django_admin_log: the policies below are all of its policies.
ALTER TABLE public.django_admin_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.django_admin_log FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS django_admin_log_insert_admin ON public.django_admin_log;
CREATE POLICY django_admin_log_insert_admin ON public.django_admin_log FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()) AND user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS django_admin_log_select_admin ON public.django_admin_log;
CREATE POLICY django_admin_log_select_admin ON public.django_admin_log FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
