-- Row-level security of public.notification_states: the policies below are all of its policies.
-- Staff read it (/dashboard/monitoring/); only the service context (the notification jobs,
-- manage.py notify_test) writes it.
ALTER TABLE public.notification_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notification_states FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS notification_states_delete_service ON public.notification_states;
CREATE POLICY notification_states_delete_service ON public.notification_states FOR DELETE
    TO witchcraft_app USING ((SELECT auth.is_service()));

DROP POLICY IF EXISTS notification_states_insert_service ON public.notification_states;
CREATE POLICY notification_states_insert_service ON public.notification_states FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS notification_states_select_admin ON public.notification_states;
CREATE POLICY notification_states_select_admin ON public.notification_states FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS notification_states_update_service ON public.notification_states;
CREATE POLICY notification_states_update_service ON public.notification_states FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
