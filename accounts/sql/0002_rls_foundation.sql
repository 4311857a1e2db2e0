-- Row-level security, part 1: the runtime role, the identity functions, and the accounts tables.
--
-- witchcraft_app is the role every request runs as (SET LOCAL ROLE, witchcraft/rls.py): it
-- cannot log in, does not bypass RLS and owns nothing. Roles are cluster-wide and test databases
-- re-run this migration, hence IF NOT EXISTS; it is never dropped by a reverse migration.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'witchcraft_app') THEN
        CREATE ROLE witchcraft_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- The migration role must be able to SET ROLE to it (a superuser can anyway).
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'witchcraft_app', 'MEMBER') THEN
        EXECUTE format('GRANT witchcraft_app TO %I', current_user);
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO witchcraft_app;
GRANT USAGE ON SCHEMA public TO witchcraft_app;

-- The request's identity, set per transaction by witchcraft/rls.py. A reused connection returns
-- '' (not NULL) for a setting cleared earlier, hence nullif.
CREATE OR REPLACE FUNCTION auth.user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT nullif(current_setting('app.user_id', true), '')::bigint $$;

CREATE OR REPLACE FUNCTION auth.actor_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT nullif(current_setting('app.actor_id', true), '')::bigint $$;

-- Service context: a command or job (witchcraft.rls.service_context), or a session that did not
-- switch to the runtime role at all (an operator in psql, the migration role). Inside a
-- SECURITY DEFINER function current_user is the owner, but the 'role' setting still tells
-- whether the caller had switched to witchcraft_app.
CREATE OR REPLACE FUNCTION auth.is_service() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
        OR current_setting('role') = 'none'
$$;

-- Admins (staff) see everything; so does the service context.
CREATE OR REPLACE FUNCTION auth.is_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_admin', true), '')::boolean, false)
        OR coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
$$;

-- May the caller act for p_user_id? The user themself, an admin, or the service context.
-- Written so that an anonymous caller (user_id NULL) never passes by a NULL comparison.
CREATE OR REPLACE FUNCTION auth.may_act_for(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT auth.is_service() OR auth.is_admin()
        OR (p_user_id IS NOT NULL AND auth.user_id() IS NOT DISTINCT FROM p_user_id)
$$;

CREATE OR REPLACE FUNCTION auth.require_act_for(p_user_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT auth.may_act_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to act for user %', p_user_id USING ERRCODE = '42501';
    END IF;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA auth FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO witchcraft_app;

-- Django's own tables the runtime role needs (sessions are keyed by secret random keys;
-- content types and permissions are static metadata).
GRANT SELECT, INSERT, UPDATE, DELETE ON django_session TO witchcraft_app;
GRANT SELECT ON django_content_type, auth_permission, auth_group, auth_group_permissions,
    users_groups, users_user_permissions TO witchcraft_app;
GRANT SELECT, INSERT ON django_admin_log TO witchcraft_app;
GRANT USAGE ON SEQUENCE django_admin_log_id_seq TO witchcraft_app;
ALTER TABLE django_admin_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE django_admin_log FORCE ROW LEVEL SECURITY;
CREATE POLICY django_admin_log_select_admin ON django_admin_log FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY django_admin_log_insert_admin ON django_admin_log FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()) AND user_id = (SELECT auth.user_id()));

-- users -------------------------------------------------------------------------------------
-- No INSERT or DELETE for the app role: registration goes through create_user_with_profile,
-- accounts are soft-deleted. UPDATE is granted column by column: an UPDATE with no WHERE is
-- checked against UPDATE policies only, so is_staff, is_superuser and email_verified_at must
-- not be writable at all.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
GRANT SELECT ON users TO witchcraft_app;
GRANT UPDATE (full_name, password, last_login) ON users TO witchcraft_app;
CREATE POLICY users_select_own ON users FOR SELECT TO witchcraft_app
    USING (id = (SELECT auth.user_id()));
CREATE POLICY users_select_admin ON users FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY users_update_own ON users FOR UPDATE TO witchcraft_app
    USING (id = (SELECT auth.user_id())) WITH CHECK (id = (SELECT auth.user_id()));
CREATE POLICY users_update_admin ON users FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

-- user_profiles -----------------------------------------------------------------------------
ALTER TABLE user_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_profiles FORCE ROW LEVEL SECURITY;
GRANT SELECT ON user_profiles TO witchcraft_app;
GRANT UPDATE (display_name, avatar_url, company, timezone, locale, preferences, updated_at)
    ON user_profiles TO witchcraft_app;
CREATE POLICY user_profiles_select_own ON user_profiles FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY user_profiles_select_admin ON user_profiles FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY user_profiles_update_own ON user_profiles FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY user_profiles_update_admin ON user_profiles FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

-- access_tokens -----------------------------------------------------------------------------
-- Users create and revoke their own tokens; the lookup by hash for authentication happens
-- before anyone is known and goes through a SECURITY DEFINER function (accounts issue).
ALTER TABLE access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_tokens FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON access_tokens TO witchcraft_app;
GRANT UPDATE (name, revoked_at, last_used_at, last_used_ip) ON access_tokens TO witchcraft_app;
GRANT USAGE ON SEQUENCE access_tokens_id_seq TO witchcraft_app;
CREATE POLICY access_tokens_select_own ON access_tokens FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY access_tokens_select_admin ON access_tokens FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));
CREATE POLICY access_tokens_insert_own ON access_tokens FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY access_tokens_update_own ON access_tokens FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
CREATE POLICY access_tokens_update_admin ON access_tokens FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

-- password_reset_tokens, email_verification_tokens --------------------------------------------
-- Written and consumed only by SECURITY DEFINER functions; admins may look.
ALTER TABLE password_reset_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_reset_tokens FORCE ROW LEVEL SECURITY;
GRANT SELECT ON password_reset_tokens TO witchcraft_app;
CREATE POLICY password_reset_tokens_select_admin ON password_reset_tokens FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

ALTER TABLE email_verification_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_verification_tokens FORCE ROW LEVEL SECURITY;
GRANT SELECT ON email_verification_tokens TO witchcraft_app;
CREATE POLICY email_verification_tokens_select_own ON email_verification_tokens FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
CREATE POLICY email_verification_tokens_select_admin ON email_verification_tokens FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- audit_logs ---------------------------------------------------------------------------------
-- Append-only, and written only through write_audit_log() below (which takes the actor, IP and
-- request id from the context, so a caller cannot forge them). No UPDATE, no DELETE, ever.
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;
GRANT SELECT ON audit_logs TO witchcraft_app;
CREATE POLICY audit_logs_select_own ON audit_logs FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
CREATE POLICY audit_logs_select_admin ON audit_logs FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

CREATE OR REPLACE FUNCTION public.write_audit_log(
    p_event_type text,
    p_user_id bigint DEFAULT NULL,
    p_severity text DEFAULT 'info',
    p_details jsonb DEFAULT '{}',
    p_target_type text DEFAULT '',
    p_target_id text DEFAULT '',
    p_user_agent text DEFAULT ''
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    IF p_user_id IS NOT NULL AND NOT auth.may_act_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to write audit events for user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.audit_logs (created_at, user_id, actor_id, event_type, severity, ip,
                                   user_agent, request_id, target_type, target_id, details)
    VALUES (pg_catalog.now(), p_user_id, coalesce(auth.actor_id(), auth.user_id()), p_event_type,
            p_severity, nullif(pg_catalog.current_setting('app.ip', true), '')::inet,
            pg_catalog.left(coalesce(p_user_agent, ''), 500),
            coalesce(pg_catalog.current_setting('app.request_id', true), ''),
            coalesce(p_target_type, ''), coalesce(p_target_id, ''), coalesce(p_details, '{}'))
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION public.write_audit_log(text, bigint, text, jsonb, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.write_audit_log(text, bigint, text, jsonb, text, text, text)
    TO witchcraft_app;
