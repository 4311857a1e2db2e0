-- Django's tables that map users (the seed's security checklist: every table that holds a
-- user's rows has row-level security), and the one the project does not use.
--
-- users_groups, users_user_permissions: which groups and permissions a user holds. The runtime
-- role reads them (Django's permission checks, auth.has_perm() reads them as their owner):
-- a user sees their own rows, staff all of them; nobody writes them through the runtime role.
-- django_session: sessions live in user_sessions (accounts.sessions); the runtime role loses
-- every right on Django's unused table.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users_groups', 'users_user_permissions']
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_select_own', t);
        EXECUTE format(
            'CREATE POLICY %I ON public.%I FOR SELECT TO witchcraft_app'
            ' USING (user_id = auth.user_id() OR auth.is_admin())',
            t || '_select_own', t);
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.%I FROM witchcraft_app', t);
    END LOOP;
END
$$;

REVOKE ALL ON public.django_session FROM witchcraft_app;
