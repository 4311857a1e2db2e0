"""The functions witchcraft owns, adopted from its numbered SQL files.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0018_audit_compression"),
        ("agents", "0010_sessions_activity_index"),
        ("billing", "0012_monthly_reports"),
        ("usage", "0012_models_of_active_providers"),
        ("witchcraft", "0003_monitoring_windows"),
    ]

    operations = [
        DefineSQL(
            name="auth.actor_id",
            sha256="f341d06d7299a0091c377b23f16f65f224662b9ff50a995ea6aad9a177733452",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION auth.actor_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT nullif(current_setting('app.actor_id', true), '')::bigint $$;
REVOKE ALL ON FUNCTION auth.actor_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.actor_id() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.has_perm",
            sha256="b902530fa6bc948722252d182be8679885d147995727efa19c7f3a18b608dbce",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION auth.has_perm(p_app_label text, p_codename text) RETURNS boolean
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
""",
        ),
        DefineSQL(
            name="auth.is_admin",
            sha256="75c8ebc47fcdbc7a2f66400d82ef01913f0cd39be14a56fbc0dc247492fcc7ef",
            adopted=True,
            sql=r"""-- Admins (staff) see everything; so does the service context.
CREATE OR REPLACE FUNCTION auth.is_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_admin', true), '')::boolean, false)
        OR coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
$$;
REVOKE ALL ON FUNCTION auth.is_admin() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_admin() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.is_service",
            sha256="e91aec39dbc395807f6754b79fb178a201539edac6fcdd9bb163bd2d453769c0",
            adopted=True,
            sql=r"""-- Service context: a command or job (witchcraft.rls.service_context), or a session that did not
-- switch to the runtime role at all (an operator in psql, the migration role). Inside a
-- SECURITY DEFINER function current_user is the owner, but the 'role' setting still tells
-- whether the caller had switched to witchcraft_app.
CREATE OR REPLACE FUNCTION auth.is_service() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT coalesce(nullif(current_setting('app.is_service', true), '')::boolean, false)
        OR current_setting('role') = 'none'
$$;
REVOKE ALL ON FUNCTION auth.is_service() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_service() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.is_superuser",
            sha256="d3cf5ab3734cfbe8fff260aed275696b564bb62a2f8ef4d77b894ab05e1bcae3",
            adopted=True,
            sql=r"""-- Who may change an account, checked by the database whatever the path (the admin's forms, a
-- service, raw SQL as the runtime role), and the end of reset links on a password change.
--
-- 1. auth.is_superuser(): the request's identity is an active superuser acting as themself (not
--    impersonated), or the service context. SECURITY DEFINER: it reads the caller's own users
--    row, so the session's word (app.is_admin) is not enough on its own.
-- 2. auth.has_perm(app_label, codename): the caller is active staff holding that Django
--    permission (directly or through a group); a superuser holds them all.
-- 3. auth.may_change_user(user_id): the user themself, a superuser (or the service context), or
--    staff holding accounts.change_user -- but a superuser's account only the superuser themself
--    or another superuser may change.
-- 4. users_guard_changes, a trigger on users, per column:
--    * is_staff, is_superuser: a superuser only (also on INSERT), whoever calls set_user_staff;
--    * any other column of someone else's row, or of a superuser's row: auth.may_change_user();
--      email_verified_at excepted, which confirm_email() sets for whoever holds the link (the
--      token is the credential, and it only confirms the address the account already has).
--    The column grants of 0002 still decide what the runtime role may write at all (password,
--    full_name, last_login); is_active, email, deleted_at change only in SECURITY DEFINER
--    functions, which the trigger checks too.
-- 5. end_password_reset_links(user_id): a password change ends every outstanding reset link
--    (the runtime role cannot update password_reset_tokens outside the service context).
CREATE OR REPLACE FUNCTION auth.is_superuser() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT auth.is_service() OR (
        coalesce(nullif(pg_catalog.current_setting('app.is_admin', true), '')::boolean, false)
        AND (auth.actor_id() IS NULL OR auth.actor_id() IS NOT DISTINCT FROM auth.user_id())
        AND EXISTS (SELECT 1 FROM public.users u
                     WHERE u.id = auth.user_id() AND u.is_superuser AND u.is_staff
                       AND u.is_active AND u.deleted_at IS NULL))
$$;
REVOKE ALL ON FUNCTION auth.is_superuser() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.is_superuser() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.may_act_for",
            sha256="33ae8dc67fccfe9f4d8c80c1e5b22e385235da96ff4791ca5f2b076f8a993585",
            adopted=True,
            sql=r"""-- May the caller act for p_user_id? The user themself, an admin, or the service context.
-- Written so that an anonymous caller (user_id NULL) never passes by a NULL comparison.
CREATE OR REPLACE FUNCTION auth.may_act_for(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT auth.is_service() OR auth.is_admin()
        OR (p_user_id IS NOT NULL AND auth.user_id() IS NOT DISTINCT FROM p_user_id)
$$;
REVOKE ALL ON FUNCTION auth.may_act_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_act_for(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.may_change_user",
            sha256="3994240274ddebc58afd668427c739508868063e134dc12441616a6ab6cd52ed",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION auth.may_change_user(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT p_user_id IS NOT NULL AND (
        auth.is_superuser()
        OR auth.user_id() IS NOT DISTINCT FROM p_user_id
        OR (auth.has_perm('accounts', 'change_user')
            AND NOT EXISTS (SELECT 1 FROM public.users u
                             WHERE u.id = p_user_id AND u.is_superuser)))
$$;
REVOKE ALL ON FUNCTION auth.may_change_user(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_change_user(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.may_record_for",
            sha256="d20ec95622268e9a9900502fc7a51005b07c502b1c9442f09fe4959314967da6",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION auth.may_record_for(p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$
    SELECT auth.is_service()
        OR (p_user_id IS NOT NULL AND auth.user_id() IS NOT DISTINCT FROM p_user_id
            AND coalesce(nullif(current_setting('app.may_record', true), '')::boolean, false))
$$;
REVOKE ALL ON FUNCTION auth.may_record_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.may_record_for(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.require_act_for",
            sha256="7be1fe0583a70d2ba553b65ab6218caa17d3e055b02e6db4b3805554c9cf670c",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION auth.require_act_for(p_user_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT auth.may_act_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to act for user %', p_user_id USING ERRCODE = '42501';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION auth.require_act_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.require_act_for(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.require_record_for",
            sha256="dac5318821f51fe7158eea1bed7f3347f9a645fdcc0c97894e865a71568e5d7a",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION auth.require_record_for(p_user_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT auth.may_record_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to reserve or record usage for user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION auth.require_record_for(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.require_record_for(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="auth.user_id",
            sha256="b5e48dd77d8b26a9de8008aa0a386741e26a628f43e27b698cf269ebc2e6e8ff",
            adopted=True,
            sql=r"""-- The request's identity, set per transaction by witchcraft/rls.py. A reused connection returns
-- '' (not NULL) for a setting cleared earlier, hence nullif.
CREATE OR REPLACE FUNCTION auth.user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT nullif(current_setting('app.user_id', true), '')::bigint $$;
REVOKE ALL ON FUNCTION auth.user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.user_id() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.daily_maintenance",
            sha256="a6624e51c49ebcc4779e83f57a57655cfc9d24b595627fead2ddd14b628ecf0b",
            adopted=True,
            sql=r"""-- daily_maintenance(): the seed's daily job, in one transaction. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity
--   audit_logs_archived          audit events older than p_audit_compress_after_days days taken
--                                from audit_logs into the compressed archive
--   audit_rows_compressed        every event stored compressed (those, and any that waited
--                                uncompressed in audit_logs_archive), at most
--                                p_audit_rows_per_run a run: compress_audit_logs
--   audit_rows_waiting           old enough events left for the next run
--   partitions_created           ai_usage_requests partitions created for the next 3 months
--   usage_partitions_archived    partitions older than p_usage_archive_after_months months
--                                moved to the archive schema (at most
--                                p_usage_partitions_per_run a run: archive_usage_partitions)
--   usage_partitions_waiting     old enough partitions left for the next run
--   session_stats_rows           rows of agent_session_stats after its refresh
--   usage_totals_rows            rows of ai_usage_daily_totals written (the last 3 days, and
--                                any day not covered yet: refresh_usage_daily_totals)
-- Idempotent: a second run finds nothing to do (every count 0 but session_stats_rows,
-- usage_totals_rows and the waiting counts).
CREATE OR REPLACE FUNCTION public.daily_maintenance(
    p_usage_archive_after_months integer DEFAULT 12,
    p_usage_partitions_per_run integer DEFAULT 2,
    p_audit_compress_after_days integer DEFAULT 90,
    p_audit_rows_per_run integer DEFAULT 50000
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
    v_sessions integer;
    v_audit jsonb;
    v_partitions integer;
    v_usage_archive jsonb;
    v_stats bigint;
    v_totals integer;
    v_lock_timeout text;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'daily_maintenance: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    DELETE FROM public.access_tokens
     WHERE expires_at <= now()
        OR revoked_at <= now() - interval '30 days';
    GET DIAGNOSTICS v_tokens = ROW_COUNT;

    DELETE FROM public.password_reset_tokens
     WHERE used_at IS NOT NULL OR expires_at <= now();
    GET DIAGNOSTICS v_resets = ROW_COUNT;

    DELETE FROM public.email_verification_tokens
     WHERE used_at IS NOT NULL OR expires_at <= now();
    GET DIAGNOSTICS v_verifications = ROW_COUNT;

    -- ended_at = last_activity_at: the session ended when it was last used, not when we noticed
    -- (and agent_sessions_active_not_ended wants is_active false once ended_at is set).
    UPDATE public.agent_sessions
       SET is_active = false, ended_at = last_activity_at
     WHERE is_active AND last_activity_at < now() - interval '24 hours';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;

    v_audit := public.compress_audit_logs(p_audit_compress_after_days, p_audit_rows_per_run);

    -- ensure_usage_partitions sets a 5 s lock_timeout for the rest of the transaction: keep it
    -- to the partition work.
    v_lock_timeout := current_setting('lock_timeout');
    v_partitions := public.ensure_usage_partitions(3);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    v_usage_archive := public.archive_usage_partitions(p_usage_archive_after_months,
                                                       p_usage_partitions_per_run);

    v_stats := public.refresh_agent_session_stats();
    v_totals := public.refresh_usage_daily_totals(3);

    RETURN jsonb_build_object(
        'expired_tokens_deleted', v_tokens,
        'reset_tokens_deleted', v_resets,
        'verification_tokens_deleted', v_verifications,
        'sessions_ended', v_sessions,
        'audit_logs_archived', (v_audit ->> 'archived')::integer,
        'audit_rows_compressed', (v_audit ->> 'compressed')::integer,
        'audit_rows_waiting', (v_audit ->> 'waiting')::bigint,
        'partitions_created', v_partitions,
        'usage_partitions_archived', (v_usage_archive ->> 'archived')::integer,
        'usage_partitions_waiting', (v_usage_archive ->> 'waiting')::integer,
        'session_stats_rows', v_stats,
        'usage_totals_rows', v_totals);
END
$$;
REVOKE ALL ON FUNCTION public.daily_maintenance(integer, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.daily_maintenance(
    integer, integer, integer, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monitoring_connections",
            sha256="fdd74b1d0be3639376d2017c4f1756dbee197aaf0b84c4336bf4575478f8b68c",
            adopted=True,
            sql=r"""-- Monitoring reads for the staff dashboard. The runtime role sees no other connection's state
-- or query text in pg_stat_activity (rightly: query text can hold data); these functions give
-- admins (and the service context) what the monitoring page needs, for this database only.
CREATE OR REPLACE FUNCTION public.monitoring_connections()
RETURNS TABLE(total bigint, active bigint, idle_in_transaction bigint, server_max integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT count(*), count(*) FILTER (WHERE a.state = 'active'),
           count(*) FILTER (WHERE a.state LIKE 'idle in transaction%'),
           current_setting('max_connections')::integer
      FROM pg_stat_activity a WHERE a.datname = current_database();
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_connections() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_connections() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monitoring_job_queue",
            sha256="21d418f85e41480bac2e50e1d5239860863e754674b324c52faa28ddaa64e6b5",
            adopted=True,
            sql=r"""-- monitoring_job_queue(): the workers' last heartbeat and the queue's state, for staff (and the
-- service context). procrastinate's tables hold every job's arguments (user ids, addresses):
-- the runtime role has no grant on them, so the page reads these counts through here.
CREATE OR REPLACE FUNCTION public.monitoring_job_queue()
RETURNS TABLE(out_workers bigint, out_last_heartbeat timestamptz, out_now timestamptz,
              out_waiting bigint, out_due bigint, out_running bigint, out_failed bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT (SELECT count(*) FROM public.procrastinate_workers),
           (SELECT max(w.last_heartbeat) FROM public.procrastinate_workers w),
           now(),
           count(*) FILTER (WHERE j.status = 'todo'),
           count(*) FILTER (WHERE j.status = 'todo'
                              AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())),
           count(*) FILTER (WHERE j.status = 'doing'),
           count(*) FILTER (WHERE j.status = 'failed')
      FROM public.procrastinate_jobs j;
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_job_queue() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_job_queue() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monitoring_request_windows",
            sha256="7433a53853b491466a6ed8a727dc5c7ae32f40f9d7f854a9ede93020b1aba154",
            adopted=True,
            sql=r"""-- monitoring_request_windows(p_now): one row per status seen in the 60 minutes before p_now
-- (now() when NULL): the requests of the last 1, 5 and 60 minutes. Rows at or after p_now are
-- not counted, so a caller can pin the clock. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_request_windows(p_now timestamptz DEFAULT NULL)
RETURNS TABLE(out_status text, out_last_1m bigint, out_last_5m bigint, out_last_60m bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT r.status::text,
           count(*) FILTER (WHERE r.created_at >= v_now - interval '1 minute'),
           count(*) FILTER (WHERE r.created_at >= v_now - interval '5 minutes'),
           count(*)
      FROM public.ai_usage_requests r
     WHERE r.created_at >= v_now - interval '60 minutes' AND r.created_at < v_now
     GROUP BY r.status
     ORDER BY r.status;
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_request_windows(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_request_windows(
    timestamp with time zone) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monitoring_slow_queries",
            sha256="d90ee8ea92ca1316e2bf90b7e1a2a790c297afe021d2ff7ba803996e2b154fb0",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.monitoring_slow_queries(p_seconds numeric, p_limit integer)
RETURNS TABLE(out_pid integer, out_user text, out_seconds double precision, out_query text,
              out_total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT a.pid, a.usename::text,
           extract(epoch FROM clock_timestamp() - a.query_start)::double precision,
           left(a.query, 500), count(*) OVER ()
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.state = 'active'
       AND a.pid <> pg_backend_pid()
       AND a.query_start < clock_timestamp() - make_interval(secs => p_seconds::double precision)
     ORDER BY a.query_start
     LIMIT least(greatest(p_limit, 1), 100);
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_slow_queries(numeric, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_slow_queries(numeric, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monitoring_slow_statements",
            sha256="76592d01f55aa5b410f20b670a8c2be41e572ab7b7bc0b463b58e97509bb99a3",
            adopted=True,
            sql=r"""-- monitoring_slow_statements(p_min_mean_ms, p_limit): this database's statements whose mean
-- execution time exceeds p_min_mean_ms since pg_stat_statements was last reset, slowest mean
-- first, at most p_limit (1..100); the text cut to 500 characters. No rows unless
-- monitoring_statements_state() is 'ok'. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_slow_statements(p_min_mean_ms double precision,
                                                             p_limit integer)
RETURNS TABLE(out_query text, out_calls bigint, out_mean_ms double precision,
              out_max_ms double precision, out_total_ms double precision, out_total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_schema text;
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    v_schema := public.monitoring_statements_schema();
    IF v_schema IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT left(s.query, 500), s.calls, s.mean_exec_time, s.max_exec_time,'
            '       s.total_exec_time, count(*) OVER ()'
            '  FROM %I.pg_stat_statements s'
            ' WHERE s.dbid = (SELECT d.oid FROM pg_database d'
            '                  WHERE d.datname = current_database())'
            '   AND s.mean_exec_time > $1'
            ' ORDER BY s.mean_exec_time DESC LIMIT $2', v_schema)
        USING coalesce(p_min_mean_ms, 1000), least(greatest(coalesce(p_limit, 20), 1), 100);
    EXCEPTION WHEN object_not_in_prerequisite_state OR undefined_table THEN
        RETURN;
    END;
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_slow_statements(double precision, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_slow_statements(
    double precision, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monitoring_statements_schema",
            sha256="d6f588e7942eb7d2a17c8c3e872e184a99c6b650e74f332580e27ff37dff68cd",
            adopted=True,
            sql=r"""-- monitoring_statements_schema(): the schema pg_stat_statements is installed in, or NULL.
-- Internal: called by the two functions below as their owner, not granted to anyone.
CREATE OR REPLACE FUNCTION public.monitoring_statements_schema()
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT n.nspname::text
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements'
$$;
REVOKE ALL ON FUNCTION public.monitoring_statements_schema() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.monitoring_statements_state",
            sha256="387490527e3c2b096be5e59084498a8da0f91bc7eb28c9638f84067e05fbc64e",
            adopted=True,
            sql=r"""-- monitoring_statements_state(): 'ok' when pg_stat_statements answers, 'not_loaded' when the
-- extension exists but its library was not preloaded, 'absent' when it is not installed in
-- this database. Staff or the service context only.
CREATE OR REPLACE FUNCTION public.monitoring_statements_state()
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_schema text;
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'monitoring is for staff' USING ERRCODE = '42501';
    END IF;
    v_schema := public.monitoring_statements_schema();
    IF v_schema IS NULL THEN
        RETURN 'absent';
    END IF;
    BEGIN
        EXECUTE format('SELECT count(*) FROM %I.pg_stat_statements_info', v_schema);
    EXCEPTION WHEN object_not_in_prerequisite_state OR undefined_table THEN
        RETURN 'not_loaded';
    END;
    RETURN 'ok';
END
$$;
REVOKE ALL ON FUNCTION public.monitoring_statements_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monitoring_statements_state() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.monthly_maintenance",
            sha256="84b11bd6d0d318532b14148916f518d95cdda87454c8c5f0b73ba94a35d2dca1",
            adopted=True,
            sql=r"""-- monthly_maintenance(), third version (billing/sql/0005 for the second, billing/sql/0003 for
-- the rest): the report step is generate_monthly_report() of the previous month. Every other
-- step is unchanged.
CREATE OR REPLACE FUNCTION public.monthly_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := now();
    v_month record;
    v_report_end date;
    v_free_tier integer;
    v_user bigint;
    v_sub public.user_subscriptions%ROWTYPE;
    v_start timestamptz;
    v_end timestamptz;
    v_step interval;
    v_open_before bigint;
    v_open_after bigint;
    v_rolled integer := 0;
    v_alerts integer := 0;
    v_canceled integer := 0;
    v_expired integer := 0;
    v_renewed integer := 0;
    v_report_rows integer := 0;
    v_downgraded integer := 0;
    v_next_tier integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'monthly_maintenance: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    SELECT b.period_start, b.period_end INTO v_month FROM public.quota_period_bounds(v_now) b;
    SELECT t.id INTO v_free_tier FROM public.subscription_tiers t WHERE t.slug = 'free';

    FOR v_user IN
        SELECT q.user_id FROM public.user_quotas q WHERE q.period_end <= v_now
        UNION
        SELECT s.user_id FROM public.user_subscriptions s
         WHERE s.status IN ('trialing', 'active', 'past_due') AND s.current_period_end <= v_now
        ORDER BY 1
    LOOP
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE;

        -- 1. The subscription (at most one current: user_subscriptions_one_current).
        SELECT s.* INTO v_sub FROM public.user_subscriptions s
         WHERE s.user_id = v_user AND s.status IN ('trialing', 'active', 'past_due')
           AND s.current_period_end <= v_now
           FOR UPDATE;
        IF FOUND THEN
            IF v_sub.cancel_at_period_end
               OR (v_sub.status = 'past_due' AND v_sub.current_period_end + interval '7 days' <= v_now)
            THEN
                IF v_free_tier IS NULL THEN
                    RAISE EXCEPTION 'monthly_maintenance: the free tier is missing'
                        USING ERRCODE = '55000';
                END IF;
                -- The old row leaves the current states first: one current row per user.
                -- canceled_at keeps the moment the user asked to cancel, when known. A
                -- downgrade to a paid tier keeps the provider's subscription: its references
                -- move to the new row (they are unique).
                -- (An unpaid subscription goes to free, whatever was scheduled.)
                v_next_tier := CASE WHEN v_sub.cancel_at_period_end AND v_sub.status <> 'past_due'
                                    THEN coalesce(v_sub.scheduled_tier_id, v_free_tier)
                                    ELSE v_free_tier END;
                UPDATE public.user_subscriptions s
                   SET status = CASE WHEN v_sub.cancel_at_period_end THEN 'canceled'
                                     ELSE 'expired' END,
                       canceled_at = CASE WHEN v_sub.cancel_at_period_end
                                          THEN coalesce(s.canceled_at, v_now)
                                          ELSE s.canceled_at END,
                       provider_subscription_id = CASE WHEN v_next_tier <> v_free_tier THEN ''
                                                       ELSE s.provider_subscription_id END,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                IF v_next_tier = v_free_tier THEN
                    INSERT INTO public.user_subscriptions
                           (user_id, tier_id, status, billing_cycle, current_period_start,
                            current_period_end, cancel_at_period_end, canceled_at,
                            payment_provider, provider_customer_id, provider_subscription_id,
                            created_at, updated_at)
                    VALUES (v_user, v_free_tier, 'active', 'monthly', v_month.period_start,
                            v_month.period_end, false, NULL, '', '', '', v_now, v_now);
                ELSE
                    -- The next period of the same cycle, caught up to now.
                    v_step := CASE v_sub.billing_cycle WHEN 'yearly' THEN interval '1 year'
                                                       ELSE interval '1 month' END;
                    v_start := v_sub.current_period_start;
                    v_end := v_sub.current_period_end;
                    WHILE v_end <= v_now LOOP
                        v_start := v_end;
                        v_end := ((v_end AT TIME ZONE 'UTC') + v_step) AT TIME ZONE 'UTC';
                    END LOOP;
                    INSERT INTO public.user_subscriptions
                           (user_id, tier_id, status, billing_cycle, current_period_start,
                            current_period_end, cancel_at_period_end, canceled_at,
                            payment_provider, provider_customer_id, provider_subscription_id,
                            provider_event_at, created_at, updated_at)
                    VALUES (v_user, v_next_tier, 'active', v_sub.billing_cycle, v_start, v_end,
                            false, NULL, v_sub.payment_provider, v_sub.provider_customer_id,
                            v_sub.provider_subscription_id, v_sub.provider_event_at, v_now,
                            v_now);
                END IF;
                IF v_sub.cancel_at_period_end AND v_next_tier <> v_free_tier THEN
                    v_downgraded := v_downgraded + 1;
                ELSIF v_sub.cancel_at_period_end THEN
                    v_canceled := v_canceled + 1;
                ELSE
                    v_expired := v_expired + 1;
                END IF;
            ELSIF v_sub.status IN ('active', 'trialing') THEN
                -- Whole cycles, computed in UTC whatever the session's TimeZone, until the
                -- period covers now (a missed month does not leave it behind).
                v_step := CASE v_sub.billing_cycle WHEN 'yearly' THEN interval '1 year'
                                                   ELSE interval '1 month' END;
                v_start := v_sub.current_period_start;
                v_end := v_sub.current_period_end;
                WHILE v_end <= v_now LOOP
                    v_start := v_end;
                    v_end := ((v_end AT TIME ZONE 'UTC') + v_step) AT TIME ZONE 'UTC';
                END LOOP;
                UPDATE public.user_subscriptions s
                   SET status = 'active',
                       current_period_start = v_start,
                       current_period_end = v_end,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                v_renewed := v_renewed + 1;
            END IF;
            -- past_due within its 7-day grace: left alone until paid or expired.
        END IF;

        -- The quota follows the plan at once, whether or not its period rolls below.
        IF v_next_tier IS NOT NULL THEN
            UPDATE public.user_quotas AS q
               SET tokens_limit = t.monthly_token_limit, cost_limit = t.monthly_cost_limit,
                   updated_at = v_now
              FROM public.subscription_tiers t
             WHERE t.id = v_next_tier AND q.user_id = v_user;
        END IF;
        v_next_tier := NULL;

        -- 2. The quota, with the limits of the plan decided above. roll_quota_forward resolves
        -- the open alerts of earlier periods; they are counted around it.
        SELECT count(*) INTO v_open_before FROM public.usage_alerts a
         WHERE a.user_id = v_user AND a.resolved_at IS NULL
           AND a.period_start < v_month.period_start;
        IF public.roll_quota_forward(v_user) THEN
            v_rolled := v_rolled + 1;
            SELECT count(*) INTO v_open_after FROM public.usage_alerts a
             WHERE a.user_id = v_user AND a.resolved_at IS NULL
               AND a.period_start < v_month.period_start;
            v_alerts := v_alerts + (v_open_before - v_open_after);
        END IF;
    END LOOP;

    -- 3. The previous calendar month's report (generate_monthly_report, above).
    v_report_end := (v_month.period_start AT TIME ZONE 'UTC')::date;
    v_report_rows := public.generate_monthly_report((v_report_end - interval '1 month')::date);

    RETURN jsonb_build_object(
        'quotas_rolled', v_rolled,
        'alerts_resolved', v_alerts,
        'subscriptions_canceled', v_canceled,
        'subscriptions_downgraded', v_downgraded,
        'subscriptions_expired', v_expired,
        'subscriptions_renewed', v_renewed,
        'report_rows', v_report_rows);
END
$$;
REVOKE ALL ON FUNCTION public.monthly_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monthly_maintenance() TO witchcraft_app;
""",
        ),
    ]
