"""The SQL objects accounts owns, adopted from its numbered SQL files.

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
            name="archive.audit_log_batches",
            sha256="00a261fb5a47060133a7776a6881e44378d84222c9f910eb9dbeb623339b626a",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of archive.audit_log_batches: the policies below are all of its policies.
ALTER TABLE archive.audit_log_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive.audit_log_batches FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS audit_log_batches_select_admin ON archive.audit_log_batches;
CREATE POLICY audit_log_batches_select_admin ON archive.audit_log_batches FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.access_tokens",
            sha256="3fd49ed4f9e85d8dc58fa1ca1f739f525c023a03ceab825ff3d3270fdf98761d",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.access_tokens: the policies below are all of its policies.
ALTER TABLE public.access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.access_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS access_tokens_insert_own ON public.access_tokens;
CREATE POLICY access_tokens_insert_own ON public.access_tokens FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS access_tokens_select_admin ON public.access_tokens;
CREATE POLICY access_tokens_select_admin ON public.access_tokens FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS access_tokens_select_own ON public.access_tokens;
CREATE POLICY access_tokens_select_own ON public.access_tokens FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS access_tokens_update_admin ON public.access_tokens;
CREATE POLICY access_tokens_update_admin ON public.access_tokens FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS access_tokens_update_own ON public.access_tokens;
CREATE POLICY access_tokens_update_own ON public.access_tokens FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.audit_logs",
            sha256="49447c06e0becca86cd43a8317d688b12b5e613a18b37b86dd5585cae909f9d9",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.audit_logs: the policies below are all of its policies.
ALTER TABLE public.audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_logs FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS audit_logs_select_admin ON public.audit_logs;
CREATE POLICY audit_logs_select_admin ON public.audit_logs FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS audit_logs_select_own ON public.audit_logs;
CREATE POLICY audit_logs_select_own ON public.audit_logs FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.audit_logs_archive",
            sha256="6f7c1f8ca01d183ca71b983273dd77e67e86406035b1a81fa60c26e21f5fa594",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.audit_logs_archive: the policies below are all of its policies.
ALTER TABLE public.audit_logs_archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_logs_archive FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS audit_logs_archive_select_admin ON public.audit_logs_archive;
CREATE POLICY audit_logs_archive_select_admin ON public.audit_logs_archive FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- The uncompressed archive is read like audit_logs too: the owner's own events (their export).
DROP POLICY IF EXISTS audit_logs_archive_select_own ON public.audit_logs_archive;
CREATE POLICY audit_logs_archive_select_own ON public.audit_logs_archive FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.django_admin_log",
            sha256="f3b249f63353f9e5b5297cfc4a60ccc8ac6cda51fa54b2656517f6a786efd0b5",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.django_admin_log: the policies below are all of its policies.
ALTER TABLE public.django_admin_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.django_admin_log FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS django_admin_log_insert_admin ON public.django_admin_log;
CREATE POLICY django_admin_log_insert_admin ON public.django_admin_log FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()) AND user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS django_admin_log_select_admin ON public.django_admin_log;
CREATE POLICY django_admin_log_select_admin ON public.django_admin_log FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.email_verification_tokens",
            sha256="3abac6c9ec27c757546ba0be5c53d32e967c519482c6249e44b683958ba013d1",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.email_verification_tokens: the policies below are all of its policies.
ALTER TABLE public.email_verification_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.email_verification_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS email_verification_tokens_insert_service ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_insert_service ON public.email_verification_tokens FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS email_verification_tokens_select_admin ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_select_admin ON public.email_verification_tokens FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS email_verification_tokens_select_own ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_select_own ON public.email_verification_tokens FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS email_verification_tokens_update_service ON public.email_verification_tokens;
CREATE POLICY email_verification_tokens_update_service ON public.email_verification_tokens FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
""",
        ),
        DefineSQL(
            name="public.otp_static_staticdevice",
            sha256="1957396fa551a29bd3d615096532204eb450852199acaa1a15eda494f83a9f20",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.otp_static_staticdevice: the policies below are all of its policies.
ALTER TABLE public.otp_static_staticdevice ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.otp_static_staticdevice FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS otp_static_staticdevice_delete ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_delete ON public.otp_static_staticdevice
    FOR DELETE TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_static_staticdevice_insert_own ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_insert_own ON public.otp_static_staticdevice
    FOR INSERT TO witchcraft_app
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));

DROP POLICY IF EXISTS otp_static_staticdevice_select ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_select ON public.otp_static_staticdevice
    FOR SELECT TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_static_staticdevice_update_own ON public.otp_static_staticdevice;
CREATE POLICY otp_static_staticdevice_update_own ON public.otp_static_staticdevice
    FOR UPDATE TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)))
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.otp_static_statictoken",
            sha256="8362201600cf06020e2e60924609ca9ef3a39d26bf9d1b897e47231c1a87c070",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.otp_static_statictoken: the policies below are all of its policies.
ALTER TABLE public.otp_static_statictoken ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.otp_static_statictoken FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS otp_static_statictoken_delete_own ON public.otp_static_statictoken;
CREATE POLICY otp_static_statictoken_delete_own ON public.otp_static_statictoken FOR DELETE
    TO witchcraft_app USING (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id AND d.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS otp_static_statictoken_insert_own ON public.otp_static_statictoken;
CREATE POLICY otp_static_statictoken_insert_own ON public.otp_static_statictoken FOR INSERT
    TO witchcraft_app WITH CHECK (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id AND d.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS otp_static_statictoken_select ON public.otp_static_statictoken;
CREATE POLICY otp_static_statictoken_select ON public.otp_static_statictoken FOR SELECT
    TO witchcraft_app USING (EXISTS (
        SELECT 1 FROM public.otp_static_staticdevice d
         WHERE d.id = device_id
           AND (d.user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()))));
""",
        ),
        DefineSQL(
            name="public.otp_totp_totpdevice",
            sha256="dc408928f3bde68374e313e4d21f69e1cd91477f6a26add2bf5b0e43d43bad69",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.otp_totp_totpdevice: the policies below are all of its policies.
ALTER TABLE public.otp_totp_totpdevice ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.otp_totp_totpdevice FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS otp_totp_totpdevice_delete ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_delete ON public.otp_totp_totpdevice
    FOR DELETE TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_totp_totpdevice_insert_own ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_insert_own ON public.otp_totp_totpdevice
    FOR INSERT TO witchcraft_app
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));

DROP POLICY IF EXISTS otp_totp_totpdevice_select ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_select ON public.otp_totp_totpdevice
    FOR SELECT TO witchcraft_app
    USING (((user_id = ( SELECT auth.user_id() AS user_id)) OR ( SELECT auth.is_admin() AS is_admin)));

DROP POLICY IF EXISTS otp_totp_totpdevice_update_own ON public.otp_totp_totpdevice;
CREATE POLICY otp_totp_totpdevice_update_own ON public.otp_totp_totpdevice
    FOR UPDATE TO witchcraft_app
    USING ((user_id = ( SELECT auth.user_id() AS user_id)))
    WITH CHECK ((user_id = ( SELECT auth.user_id() AS user_id)));
""",
        ),
        DefineSQL(
            name="public.password_reset_tokens",
            sha256="a7163428ab531ef7a66d2ab355d937298a51108ba59498ac58104021f9de5a7f",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.password_reset_tokens: the policies below are all of its policies.
ALTER TABLE public.password_reset_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.password_reset_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS password_reset_tokens_insert_service ON public.password_reset_tokens;
CREATE POLICY password_reset_tokens_insert_service ON public.password_reset_tokens FOR INSERT
    TO witchcraft_app WITH CHECK ((SELECT auth.is_service()));

DROP POLICY IF EXISTS password_reset_tokens_select_admin ON public.password_reset_tokens;
CREATE POLICY password_reset_tokens_select_admin ON public.password_reset_tokens FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS password_reset_tokens_update_service ON public.password_reset_tokens;
CREATE POLICY password_reset_tokens_update_service ON public.password_reset_tokens FOR UPDATE
    TO witchcraft_app USING ((SELECT auth.is_service())) WITH CHECK ((SELECT auth.is_service()));
""",
        ),
        DefineSQL(
            name="public.service_credentials",
            sha256="8932f783c60c0055a18ec234729c295e48b72264079b6ff5798fe76ac57755a7",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.service_credentials: the policies below are all of its policies.
ALTER TABLE public.service_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.service_credentials FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS service_credentials_select_admin ON public.service_credentials;
CREATE POLICY service_credentials_select_admin ON public.service_credentials FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.user_profiles",
            sha256="8572903204af28926c90d8855ef17551b25ec8180c3140e1c7dd792ecfb7edf8",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.user_profiles: the policies below are all of its policies.
ALTER TABLE public.user_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_profiles FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_profiles_select_admin ON public.user_profiles;
CREATE POLICY user_profiles_select_admin ON public.user_profiles FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_profiles_select_own ON public.user_profiles;
CREATE POLICY user_profiles_select_own ON public.user_profiles FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS user_profiles_update_admin ON public.user_profiles;
CREATE POLICY user_profiles_update_admin ON public.user_profiles FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_profiles_update_own ON public.user_profiles;
CREATE POLICY user_profiles_update_own ON public.user_profiles FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.user_sessions",
            sha256="632884f67e7a0fe0523ec382a5c3d3f7edd0e0a465de19abcdaffa40e42f4b40",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.user_sessions: the policies below are all of its policies.
ALTER TABLE public.user_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.user_sessions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_sessions_delete_admin ON public.user_sessions;
CREATE POLICY user_sessions_delete_admin ON public.user_sessions FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_delete_own ON public.user_sessions;
CREATE POLICY user_sessions_delete_own ON public.user_sessions FOR DELETE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS user_sessions_insert_own ON public.user_sessions;
CREATE POLICY user_sessions_insert_own ON public.user_sessions FOR INSERT TO witchcraft_app
    WITH CHECK (user_id IS NULL OR user_id = (SELECT auth.user_id()) OR (SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_select_admin ON public.user_sessions;
CREATE POLICY user_sessions_select_admin ON public.user_sessions FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_select_own ON public.user_sessions;
CREATE POLICY user_sessions_select_own ON public.user_sessions FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS user_sessions_update_admin ON public.user_sessions;
CREATE POLICY user_sessions_update_admin ON public.user_sessions FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS user_sessions_update_own ON public.user_sessions;
CREATE POLICY user_sessions_update_own ON public.user_sessions FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.users",
            sha256="ca8e1c774cb9a91a7dd13840c1236741223a7dc33bcb87c0915f13b85494cd77",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.users: the policies below are all of its policies.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_select_actor ON public.users;
CREATE POLICY users_select_actor ON public.users FOR SELECT TO witchcraft_app
    USING (id = (SELECT auth.actor_id()));

DROP POLICY IF EXISTS users_select_admin ON public.users;
CREATE POLICY users_select_admin ON public.users FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS users_select_own ON public.users;
CREATE POLICY users_select_own ON public.users FOR SELECT TO witchcraft_app
    USING (id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS users_update_admin ON public.users;
CREATE POLICY users_update_admin ON public.users FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS users_update_own ON public.users;
CREATE POLICY users_update_own ON public.users FOR UPDATE TO witchcraft_app
    USING (id = (SELECT auth.user_id())) WITH CHECK (id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.users_groups",
            sha256="82873cbe640d3e172b05a905bece6d97ece6cdf2e5a0bd056d55a1c239e220fa",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.users_groups: the policies below are all of its policies.
ALTER TABLE public.users_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users_groups FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_groups_select_own ON public.users_groups;
CREATE POLICY users_groups_select_own ON public.users_groups
    FOR SELECT TO witchcraft_app
    USING (((user_id = auth.user_id()) OR auth.is_admin()));
""",
        ),
        DefineSQL(
            name="public.users_user_permissions",
            sha256="2d453fca63b44f9484acc69689fd90bb407d857cff2cfe873ded04ed3816524b",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.users_user_permissions: the policies below are all of its policies.
ALTER TABLE public.users_user_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users_user_permissions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_user_permissions_select_own ON public.users_user_permissions;
CREATE POLICY users_user_permissions_select_own ON public.users_user_permissions
    FOR SELECT TO witchcraft_app
    USING (((user_id = auth.user_id()) OR auth.is_admin()));
""",
        ),
        DefineSQL(
            name="access_tokens_keep_revoked",
            sha256="443d8ef168eab5ef6444bdd0ebeb405ed5992a177fa6943c4ee42dade6b4a765",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER access_tokens_keep_revoked BEFORE UPDATE OF revoked_at ON public.access_tokens
    FOR EACH ROW EXECUTE FUNCTION public.access_tokens_keep_revoked();
""",
        ),
        DefineSQL(
            name="users_audit_staff_flags",
            sha256="76094b6047837acb053e3695d9b331b6ac5a58858a036ff661e9de7379feff2e",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER users_audit_staff_flags AFTER UPDATE OF is_staff, is_superuser ON public.users
    FOR EACH ROW
    WHEN (OLD.is_staff IS DISTINCT FROM NEW.is_staff
          OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser)
    EXECUTE FUNCTION public.users_audit_staff_flags();
""",
        ),
        DefineSQL(
            name="users_guard_changes",
            sha256="df863b931344204bbd23da853b073ad45c2e9b3ee3eec392cde09fa8047c7ff0",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER users_guard_changes BEFORE INSERT OR UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.users_guard_changes();
""",
        ),
    ]
