"""The SQL objects usage owns, adopted from its numbered SQL files.

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
            name="archive.ai_usage_requests",
            sha256="4567d86bdba070e36a013ab40a05642e8e58b0a4df05ef243921abf2ce31f29b",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of archive.ai_usage_requests: the policies below are all of its policies.
ALTER TABLE archive.ai_usage_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive.ai_usage_requests FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_requests_archive_select_admin ON archive.ai_usage_requests;
CREATE POLICY ai_usage_requests_archive_select_admin ON archive.ai_usage_requests FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_usage_requests_archive_select_own ON archive.ai_usage_requests;
CREATE POLICY ai_usage_requests_archive_select_own ON archive.ai_usage_requests FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.ai_models",
            sha256="49e4eac1ed03bef419de8c31c5cb18a22569771678a6f2deb8f104e31a359501",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_models: the policies below are all of its policies.
ALTER TABLE public.ai_models ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_models FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_models_delete_admin ON public.ai_models;
CREATE POLICY ai_models_delete_admin ON public.ai_models FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_models_insert_admin ON public.ai_models;
CREATE POLICY ai_models_insert_admin ON public.ai_models FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_models_select_active ON public.ai_models;
CREATE POLICY ai_models_select_active ON public.ai_models FOR SELECT TO witchcraft_app
    USING ((is_active AND public.ai_provider_is_active(provider_id)) OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_models_update_admin ON public.ai_models;
CREATE POLICY ai_models_update_admin ON public.ai_models FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.ai_providers",
            sha256="c37c5338a064ab717605e8ab38648fc639605d12c7f4f01cf8f25ae0e2ea9dd6",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_providers: the policies below are all of its policies.
ALTER TABLE public.ai_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_providers FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_providers_delete_admin ON public.ai_providers;
CREATE POLICY ai_providers_delete_admin ON public.ai_providers FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_providers_insert_admin ON public.ai_providers;
CREATE POLICY ai_providers_insert_admin ON public.ai_providers FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_providers_select_active ON public.ai_providers;
CREATE POLICY ai_providers_select_active ON public.ai_providers FOR SELECT TO witchcraft_app
    USING (is_active OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS ai_providers_update_admin ON public.ai_providers;
CREATE POLICY ai_providers_update_admin ON public.ai_providers FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.ai_usage_daily",
            sha256="1a79abd51aa80cc5133c07e19c6c608c3eafc5534b1e239a8aa283a90d5274ca",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_usage_daily: the policies below are all of its policies.
ALTER TABLE public.ai_usage_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_daily FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_daily_select_admin ON public.ai_usage_daily;
CREATE POLICY ai_usage_daily_select_admin ON public.ai_usage_daily
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_daily_select_own ON public.ai_usage_daily;
CREATE POLICY ai_usage_daily_select_own ON public.ai_usage_daily
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.ai_usage_daily_totals",
            sha256="2e6f9f6ea7ac31eaf9efe01864942ba1b0c84d0e7ad2d18bede935fcad7a820a",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_usage_daily_totals: the policies below are all of its policies.
ALTER TABLE public.ai_usage_daily_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_daily_totals FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_daily_totals_select_admin ON public.ai_usage_daily_totals;
CREATE POLICY ai_usage_daily_totals_select_admin ON public.ai_usage_daily_totals
    FOR SELECT TO witchcraft_app USING ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.ai_usage_monthly",
            sha256="f8a7aeb6d7baaedf64d3676ea2e00cb703794260d6861093fa89fc05f01365ec",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_usage_monthly: the policies below are all of its policies.
ALTER TABLE public.ai_usage_monthly ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_monthly FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_monthly_select_admin ON public.ai_usage_monthly;
CREATE POLICY ai_usage_monthly_select_admin ON public.ai_usage_monthly
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_monthly_select_own ON public.ai_usage_monthly;
CREATE POLICY ai_usage_monthly_select_own ON public.ai_usage_monthly
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.ai_usage_request_keys",
            sha256="1692b044c09dde52f4a754902a2056f0fa4c9a3bdb323c68c356088e0940de72",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_usage_request_keys: the policies below are all of its policies.
ALTER TABLE public.ai_usage_request_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_request_keys FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_request_keys_select_admin ON public.ai_usage_request_keys;
CREATE POLICY ai_usage_request_keys_select_admin ON public.ai_usage_request_keys
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_request_keys_select_own ON public.ai_usage_request_keys;
CREATE POLICY ai_usage_request_keys_select_own ON public.ai_usage_request_keys
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.ai_usage_requests",
            sha256="5b5ba33b1ce34fb6f7ffcdc3379aa15688924a20abe316ff83aaf9e1b2fac84a",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_usage_requests: the policies below are all of its policies.
ALTER TABLE public.ai_usage_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_requests FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_requests_select_admin ON public.ai_usage_requests;
CREATE POLICY ai_usage_requests_select_admin ON public.ai_usage_requests
    FOR SELECT TO witchcraft_app
    USING (( SELECT auth.is_admin() AS is_admin));

DROP POLICY IF EXISTS ai_usage_requests_select_own ON public.ai_usage_requests;
CREATE POLICY ai_usage_requests_select_own ON public.ai_usage_requests
    FOR SELECT TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.ai_usage_totals_state",
            sha256="8e1976d4b7a6f48b7c8686f8d9d2718638d3c30047898aa06524e041ffee06fd",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.ai_usage_totals_state: the policies below are all of its policies.
ALTER TABLE public.ai_usage_totals_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_totals_state FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ai_usage_totals_state_select_admin ON public.ai_usage_totals_state;
CREATE POLICY ai_usage_totals_state_select_admin ON public.ai_usage_totals_state
    FOR SELECT TO witchcraft_app USING ((SELECT auth.is_admin()));
""",
        ),
    ]
