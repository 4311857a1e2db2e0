"""New definitions of policies/public.notification_states, policies/public.staff_notifications.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0021_maintenance_steps"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0015_maintenance_steps"),
        ("usage", "0016_error_message"),
        ("witchcraft", "0007_staff_notifications"),
    ]

    operations = [
        DefineSQL(
            name="public.notification_states",
            sha256="7cdf75deb9eceb278c1cef7922f11fd9425db0372c0196eb067149f8ed150230",
            kind="policies",
            drop_on_reverse=[
                "DROP POLICY IF EXISTS notification_states_delete_service ON public.notification_states",
                "DROP POLICY IF EXISTS notification_states_insert_service ON public.notification_states",
                "DROP POLICY IF EXISTS notification_states_select_admin ON public.notification_states",
                "DROP POLICY IF EXISTS notification_states_update_service ON public.notification_states",
            ],
            sql=r"""-- Row-level security of public.notification_states: the policies below are all of its policies.
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
""",
        ),
        DefineSQL(
            name="public.staff_notifications",
            sha256="b911a1771707bf071c35c8d2d3b0ceb91022af361fb46e1b6d9b66742a3a59ca",
            kind="policies",
            drop_on_reverse=[
                "DROP POLICY IF EXISTS staff_notifications_delete_service ON public.staff_notifications",
                "DROP POLICY IF EXISTS staff_notifications_insert_service ON public.staff_notifications",
                "DROP POLICY IF EXISTS staff_notifications_select_admin ON public.staff_notifications",
                "DROP POLICY IF EXISTS staff_notifications_update_service ON public.staff_notifications",
            ],
            sql=r"""-- Row-level security of public.staff_notifications: the policies below are all of its policies.
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
""",
        ),
    ]
