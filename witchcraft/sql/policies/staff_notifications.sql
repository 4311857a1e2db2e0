-- Row-level security of public.staff_notifications: the policies below are all of its policies.
-- Staff read it (/dashboard/monitoring/); only the service context (the notification jobs,
-- manage.py notify_test) writes it.
ALTER TABLE public.staff_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.staff_notifications FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS staff_notifications_delete_service ON public.staff_notifications;
CREATE POLICY staff_notifications_delete_service ON public.staff_notifications FOR DELETE
    TO witchcraft_app USING ((SELECT auth.is_service()));

DROP POLICY IF EXISTS staff_notifications_insert_service ON public.staff_notifications;
CREATE POLICY staff_notifications_insert_service ON public.staff_notifications FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS staff_notifications_select_admin ON public.staff_notifications;
CREATE POLICY staff_notifications_select_admin ON public.staff_notifications FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS staff_notifications_update_service ON public.staff_notifications;
CREATE POLICY staff_notifications_update_service ON public.staff_notifications FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
