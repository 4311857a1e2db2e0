"""The SQL objects billing owns, adopted from its numbered SQL files.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0019_functions"),
        ("agents", "0011_functions"),
        ("billing", "0013_functions"),
        ("usage", "0014_batch_row_error_message"),
        ("witchcraft", "0004_functions"),
    ]

    operations = [
        DefineSQL(
            name="public.billing_webhook_events",
            sha256="d540dd1fe7d327c087210203ad8f86b586ba8f10012d3792ef3afd9bf682947b",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.billing_webhook_events: the policies below are all of its policies.
ALTER TABLE public.billing_webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_webhook_events FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS billing_webhook_events_select_admin ON public.billing_webhook_events;
CREATE POLICY billing_webhook_events_select_admin ON public.billing_webhook_events FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.payment_history",
            sha256="6d84bdef5e2e5fdcab5279dfce85ee9153fd9967160b6bc5b2ebe131143c9f2f",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.payment_history: the policies below are all of its policies.
ALTER TABLE public.payment_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payment_history FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS payment_history_select_admin ON public.payment_history;
CREATE POLICY payment_history_select_admin ON public.payment_history
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS payment_history_select_own ON public.payment_history;
CREATE POLICY payment_history_select_own ON public.payment_history
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.quota_reservations",
            sha256="3871db79571aa10a00520296a8521373e84e7eb93a8062dcbd2b17657207f91a",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.quota_reservations: the policies below are all of its policies.
ALTER TABLE public.quota_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quota_reservations FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS quota_reservations_select_admin ON public.quota_reservations;
CREATE POLICY quota_reservations_select_admin ON public.quota_reservations FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS quota_reservations_select_own ON public.quota_reservations;
CREATE POLICY quota_reservations_select_own ON public.quota_reservations FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.subscription_tiers",
            sha256="8b967a175e46589030a7708ea303f1f6e181fe45874eb57856cb3779af93a887",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.subscription_tiers: the policies below are all of its policies.
ALTER TABLE public.subscription_tiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.subscription_tiers FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS subscription_tiers_delete_admin ON public.subscription_tiers;
CREATE POLICY subscription_tiers_delete_admin ON public.subscription_tiers FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS subscription_tiers_insert_admin ON public.subscription_tiers;
CREATE POLICY subscription_tiers_insert_admin ON public.subscription_tiers FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS subscription_tiers_select_own ON public.subscription_tiers;
CREATE POLICY subscription_tiers_select_own ON public.subscription_tiers FOR SELECT TO witchcraft_app
    USING (id IN (SELECT s.tier_id FROM user_subscriptions s
                   WHERE s.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS subscription_tiers_select_public ON public.subscription_tiers;
CREATE POLICY subscription_tiers_select_public ON public.subscription_tiers FOR SELECT TO witchcraft_app
    USING ((is_public AND is_active) OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS subscription_tiers_update_admin ON public.subscription_tiers;
CREATE POLICY subscription_tiers_update_admin ON public.subscription_tiers FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.usage_alerts",
            sha256="96cab4a706a60e48f4ba3c19365a15da848e6bb7358c424d8d36f83c122dc38f",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.usage_alerts: the policies below are all of its policies.
ALTER TABLE public.usage_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_alerts FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS usage_alerts_select_admin ON public.usage_alerts;
CREATE POLICY usage_alerts_select_admin ON public.usage_alerts
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS usage_alerts_select_own ON public.usage_alerts;
CREATE POLICY usage_alerts_select_own ON public.usage_alerts
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));

DROP POLICY IF EXISTS usage_alerts_update_admin ON public.usage_alerts;
CREATE POLICY usage_alerts_update_admin ON public.usage_alerts FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS usage_alerts_update_own ON public.usage_alerts;
-- A user acknowledges their own alerts, as themselves.
CREATE POLICY usage_alerts_update_own ON public.usage_alerts FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()))
    WITH CHECK (user_id = (SELECT auth.user_id())
                AND (acknowledged_by_id IS NULL
                     OR acknowledged_by_id = (SELECT auth.user_id())));
""",
        ),
        DefineSQL(
            name="public.usage_monthly_reports",
            sha256="c1928667e8b7f54f244cc47e8836d1d3d34dd8a62a6cecfa021fcda96b4a4bc5",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.usage_monthly_reports: the policies below are all of its policies.
ALTER TABLE public.usage_monthly_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_monthly_reports FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS usage_monthly_reports_select_admin ON public.usage_monthly_reports;
CREATE POLICY usage_monthly_reports_select_admin ON public.usage_monthly_reports FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.user_quotas",
            sha256="5c6b3431108ba701e90e61d7e01dd479955ead109adfb0c135cef9bb14d5b975",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.user_quotas: the policies below are all of its policies.
ALTER TABLE public.user_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_quotas FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_quotas_select_admin ON public.user_quotas;
CREATE POLICY user_quotas_select_admin ON public.user_quotas
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS user_quotas_select_own ON public.user_quotas;
CREATE POLICY user_quotas_select_own ON public.user_quotas
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.user_subscriptions",
            sha256="936c362b4e6f286a0f8fc0611d64ef4c4886240074961db506a8bc8ecbf423cb",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.user_subscriptions: the policies below are all of its policies.
ALTER TABLE public.user_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_subscriptions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_subscriptions_select_admin ON public.user_subscriptions;
CREATE POLICY user_subscriptions_select_admin ON public.user_subscriptions
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS user_subscriptions_select_own ON public.user_subscriptions;
CREATE POLICY user_subscriptions_select_own ON public.user_subscriptions
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
    ]
