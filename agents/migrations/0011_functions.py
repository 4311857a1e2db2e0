"""The functions agents owns, adopted from its numbered SQL files.

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
            name="public.agent_messages_assign_position",
            sha256="ca1f5ecb1dca823bb3db672f70d0663fecbd8a8bcc69a624ae5dddc2aac6f8a4",
            adopted=True,
            sql=r"""-- Agent session counters, kept by triggers so they always equal a recount of the children
-- (seed: "Agent Session Flow", step 8):
--   message_count      number of agent_messages of the session
--   tool_call_count    number of agent_tool_calls of the session
--   input_tokens, output_tokens, total_tokens, total_cost
--                      sums over the ai_usage_requests rows of the session (the metered truth;
--                      the per-message token columns are informative and not summed, or a
--                      message with its usage row would count twice)
--   last_activity_at   greatest(started_at, latest message created_at)
-- The runtime role cannot write these columns (agents/sql/0002_rls.sql grants only the
-- descriptive ones): the trigger functions are SECURITY DEFINER with a pinned search_path.
-- session_id of a message or tool call is not updatable by the runtime role, so only INSERT and
-- DELETE are tracked. Usage rows are never deleted by the app and are moved between partitions
-- by ensure_usage_partitions (a DELETE plus an INSERT into a not yet attached table): only their
-- INSERT is tracked, so the move does not disturb the totals.
--
-- Lock order: these triggers lock the session row. record_ai_usage has already locked the
-- quota row by the time its usage row reaches the session, so quota -> session everywhere.
-- Positions: a message inserted without one (NULL or 0) gets the next free position of its
-- session. The session row is locked first, so concurrent inserts into one session serialise
-- instead of colliding on agent_messages_session_position_key.
CREATE OR REPLACE FUNCTION public.agent_messages_assign_position() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NEW.position IS NULL OR NEW.position = 0 THEN
        PERFORM 1 FROM public.agent_sessions s WHERE s.id = NEW.session_id FOR UPDATE;
        SELECT coalesce(max(m.position), 0) + 1 INTO NEW.position
          FROM public.agent_messages m
         WHERE m.session_id = NEW.session_id;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.agent_messages_assign_position() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.agent_messages_count",
            sha256="4e6972cf730c897fef50f637f7ae3d623b2a1a5e9f7b0f42023e5ceebcb1c307",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.agent_messages_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.agent_sessions AS s
           SET message_count = s.message_count + 1,
               last_activity_at = greatest(s.last_activity_at, NEW.created_at)
         WHERE s.id = NEW.session_id;
        RETURN NEW;
    END IF;
    -- DELETE: the statement's deletions are already invisible here, so the latest remaining
    -- message is a plain max().
    UPDATE public.agent_sessions AS s
       SET message_count = s.message_count - 1,
           last_activity_at = greatest(s.started_at,
                                       (SELECT max(m.created_at) FROM public.agent_messages m
                                         WHERE m.session_id = OLD.session_id))
     WHERE s.id = OLD.session_id;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION public.agent_messages_count() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.agent_tool_calls_count",
            sha256="80e48fc4675d13e4abe9d693425d1e708393417d4ddcddfd05a95fb0a295ee8f",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.agent_tool_calls_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.agent_sessions AS s SET tool_call_count = s.tool_call_count + 1
         WHERE s.id = NEW.session_id;
        RETURN NEW;
    END IF;
    UPDATE public.agent_sessions AS s SET tool_call_count = s.tool_call_count - 1
     WHERE s.id = OLD.session_id;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION public.agent_tool_calls_count() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.ai_usage_requests_add_to_session",
            sha256="1124a6bd4cecac97a6766150a00f73760d9f4021f55674fdea9a4efc118b1d80",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.ai_usage_requests_add_to_session() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.agent_sessions AS s
       SET input_tokens = s.input_tokens + NEW.input_tokens,
           output_tokens = s.output_tokens + NEW.output_tokens,
           total_tokens = s.total_tokens + NEW.total_tokens,
           total_cost = s.total_cost + NEW.cost
     WHERE s.id = NEW.agent_session_id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.ai_usage_requests_add_to_session() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.get_agent_session_stats",
            sha256="52f7a9de047e6b6bf71a4030d2bb8e7ab7fb458a592e099f85b82c3fc1733885",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.get_agent_session_stats(p_session_ids bigint[] DEFAULT NULL)
RETURNS SETOF public.agent_session_stats
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT st.* FROM public.agent_session_stats st
     WHERE (auth.is_admin() OR (auth.user_id() IS NOT NULL AND st.user_id = auth.user_id()))
       AND (p_session_ids IS NULL OR st.session_id = ANY (p_session_ids))
$$;
REVOKE ALL ON FUNCTION public.get_agent_session_stats(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_agent_session_stats(bigint[]) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.lock_user_quota",
            sha256="019fa5cc120fb77dd5bc25cd6452cb3c03cea75808f1de32cd011f0f9a282156",
            adopted=True,
            sql=r"""-- lock_user_quota(user): take the user's quota row lock now, for the rest of the transaction.
--
-- The lock order of the AI request flow is quota -> agent session (billing/sql/0002): a usage
-- row that names a session reaches the session through a trigger after record_ai_usage locked
-- the quota. Writing an assistant message locks its session (the position and counter
-- triggers of agents/sql/0003), so a flow that writes the message and then records its usage
-- in one transaction would take session -> quota, and deadlock against a usage record for the
-- same session arriving through another request. Such a flow calls this first.
--
-- The runtime role cannot lock user_quotas itself (SELECT ... FOR UPDATE needs an UPDATE grant
-- and an UPDATE policy, which it must not have). Caller check as everywhere: the user
-- themself, an admin or the service context (42501 otherwise). A user without a quota row
-- locks nothing (record_ai_usage then books nothing either).
CREATE OR REPLACE FUNCTION public.lock_user_quota(p_user_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
END
$$;
REVOKE ALL ON FUNCTION public.lock_user_quota(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.lock_user_quota(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.refresh_agent_session_stats",
            sha256="0a3b38667b5e874fe0cdf7b743fd5bf7330e534e855d9b0b6b7280f626e57ae8",
            adopted=True,
            sql=r"""-- refresh_agent_session_stats(): recompute agent_session_stats and return its row count.
-- CONCURRENTLY (readers are never blocked; the view has a unique index) is allowed inside a
-- transaction block and inside a function: checked on PostgreSQL 15 and 18. It needs a
-- populated view, so an unpopulated one (created WITH NO DATA) is filled the plain way.
-- The view belongs to the owner of this function; the app role has no grant on it.
CREATE OR REPLACE FUNCTION public.refresh_agent_session_stats() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'refresh_agent_session_stats: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF (SELECT ispopulated FROM pg_catalog.pg_matviews
         WHERE schemaname = 'public' AND matviewname = 'agent_session_stats') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY public.agent_session_stats;
    ELSE
        REFRESH MATERIALIZED VIEW public.agent_session_stats;
    END IF;
    SELECT count(*) INTO v_rows FROM public.agent_session_stats;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_agent_session_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_agent_session_stats() TO witchcraft_app;
""",
        ),
    ]
