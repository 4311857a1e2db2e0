"""The SQL objects agents owns, adopted from its numbered SQL files.

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
            name="public.agent_feedback",
            sha256="294c123fcc46cf056d7280d8131d2b3d0e173cf5a67c2913e0053b7f1c379882",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.agent_feedback: the policies below are all of its policies.
ALTER TABLE public.agent_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_feedback FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_feedback_delete_own ON public.agent_feedback;
CREATE POLICY agent_feedback_delete_own ON public.agent_feedback FOR DELETE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_feedback_insert_own ON public.agent_feedback;
-- Feedback on a message must name a message of the same session.
CREATE POLICY agent_feedback_insert_own ON public.agent_feedback FOR INSERT TO witchcraft_app
    WITH CHECK (
    user_id = (SELECT auth.user_id())
    AND EXISTS (SELECT 1 FROM public.agent_sessions s
                 WHERE s.id = agent_feedback.session_id AND s.user_id = (SELECT auth.user_id()))
    AND (agent_feedback.message_id IS NULL OR EXISTS (
            SELECT 1 FROM public.agent_messages m
             WHERE m.id = agent_feedback.message_id
               AND m.session_id = agent_feedback.session_id)));

DROP POLICY IF EXISTS agent_feedback_select_admin ON public.agent_feedback;
CREATE POLICY agent_feedback_select_admin ON public.agent_feedback FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_feedback_select_own ON public.agent_feedback;
CREATE POLICY agent_feedback_select_own ON public.agent_feedback FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_feedback_update_own ON public.agent_feedback;
CREATE POLICY agent_feedback_update_own ON public.agent_feedback FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.agent_messages",
            sha256="64f008940f703b6c7efc366d2ccaf9dae6fce64e7f8d1b269ef683a042071fcf",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.agent_messages: the policies below are all of its policies.
ALTER TABLE public.agent_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_messages FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_messages_insert_own ON public.agent_messages;
CREATE POLICY agent_messages_insert_own ON public.agent_messages FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()) AND EXISTS (
        SELECT 1 FROM agent_sessions s
         WHERE s.id = session_id AND s.user_id = (SELECT auth.user_id())));

DROP POLICY IF EXISTS agent_messages_select_admin ON public.agent_messages;
CREATE POLICY agent_messages_select_admin ON public.agent_messages FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_messages_select_own ON public.agent_messages;
CREATE POLICY agent_messages_select_own ON public.agent_messages FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.agent_sessions",
            sha256="cf2dd96b5d4515f64effad2c2f3adcbfa54e1546638b01093af19a527ae02a03",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.agent_sessions: the policies below are all of its policies.
ALTER TABLE public.agent_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_sessions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_sessions_insert_own ON public.agent_sessions;
CREATE POLICY agent_sessions_insert_own ON public.agent_sessions FOR INSERT TO witchcraft_app
    WITH CHECK (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_sessions_select_admin ON public.agent_sessions;
CREATE POLICY agent_sessions_select_admin ON public.agent_sessions FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_sessions_select_own ON public.agent_sessions;
CREATE POLICY agent_sessions_select_own ON public.agent_sessions FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_sessions_update_admin ON public.agent_sessions;
CREATE POLICY agent_sessions_update_admin ON public.agent_sessions FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_sessions_update_own ON public.agent_sessions;
CREATE POLICY agent_sessions_update_own ON public.agent_sessions FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="public.agent_tool_calls",
            sha256="083c24134afe133b9f4709ba281602abb11c21524e4e8c3de564f4c253e8713b",
            kind="policies",
            adopted=True,
            sql=r"""-- Row-level security of public.agent_tool_calls: the policies below are all of its policies.
ALTER TABLE public.agent_tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.agent_tool_calls FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_tool_calls_insert_own ON public.agent_tool_calls;
-- A tool call of a message must name a message of the same session.
CREATE POLICY agent_tool_calls_insert_own ON public.agent_tool_calls FOR INSERT TO witchcraft_app
    WITH CHECK (
    user_id = (SELECT auth.user_id())
    AND EXISTS (SELECT 1 FROM public.agent_sessions s
                 WHERE s.id = agent_tool_calls.session_id AND s.user_id = (SELECT auth.user_id()))
    AND (agent_tool_calls.message_id IS NULL OR EXISTS (
            SELECT 1 FROM public.agent_messages m
             WHERE m.id = agent_tool_calls.message_id
               AND m.session_id = agent_tool_calls.session_id)));

DROP POLICY IF EXISTS agent_tool_calls_select_admin ON public.agent_tool_calls;
CREATE POLICY agent_tool_calls_select_admin ON public.agent_tool_calls FOR SELECT TO witchcraft_app
    USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS agent_tool_calls_select_own ON public.agent_tool_calls;
CREATE POLICY agent_tool_calls_select_own ON public.agent_tool_calls FOR SELECT TO witchcraft_app
    USING (user_id = (SELECT auth.user_id()));

DROP POLICY IF EXISTS agent_tool_calls_update_own ON public.agent_tool_calls;
CREATE POLICY agent_tool_calls_update_own ON public.agent_tool_calls FOR UPDATE TO witchcraft_app
    USING (user_id = (SELECT auth.user_id())) WITH CHECK (user_id = (SELECT auth.user_id()));
""",
        ),
        DefineSQL(
            name="agent_messages_position",
            sha256="3d0d8fd53e8de24a77f2e73f33623038e344e8228efe23adc54018aead241908",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER agent_messages_position BEFORE INSERT ON public.agent_messages
    FOR EACH ROW EXECUTE FUNCTION public.agent_messages_assign_position();
""",
        ),
        DefineSQL(
            name="agent_messages_session_counters",
            sha256="8fcc864a3baf3a667b4661fdc7345cf988ac32904e2d0e132c371cf9db8a6985",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER agent_messages_session_counters AFTER INSERT OR DELETE ON public.agent_messages
    FOR EACH ROW EXECUTE FUNCTION public.agent_messages_count();
""",
        ),
        DefineSQL(
            name="agent_tool_calls_session_counters",
            sha256="fc0b009c7398093b57a13b9aab631fdb25d440930f975f3c800be91a4b1abdbc",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER agent_tool_calls_session_counters AFTER INSERT OR DELETE
    ON public.agent_tool_calls
    FOR EACH ROW EXECUTE FUNCTION public.agent_tool_calls_count();
""",
        ),
        DefineSQL(
            name="ai_usage_requests_session_totals",
            sha256="8f81de022d4b54df4b02e6db378567d0d3a18d649be35d0ab193d9eeb2cb8e2c",
            kind="triggers",
            adopted=True,
            sql=r"""CREATE OR REPLACE TRIGGER ai_usage_requests_session_totals AFTER INSERT ON public.ai_usage_requests
    FOR EACH ROW WHEN (NEW.agent_session_id IS NOT NULL)
    EXECUTE FUNCTION public.ai_usage_requests_add_to_session();
""",
        ),
        DefineSQL(
            name="public.agent_session_stats",
            sha256="e8a8c5cf67eeb3f5f263999d32412ca8f3d80c0525e99a1bab6aa685a48fa2d2",
            kind="views",
            adopted=True,
            sql=r"""-- agent_session_stats: pre-computed statistics per agent session.
-- Refreshed with REFRESH MATERIALIZED VIEW CONCURRENTLY (its unique index allows that), so
-- readers are never blocked. Row-level security does not apply to materialized views: the
-- runtime role gets no grant on it and reads it through a SECURITY DEFINER function.
CREATE MATERIALIZED VIEW IF NOT EXISTS public.agent_session_stats AS
WITH message_counts AS (
    SELECT session_id,
           count(*) FILTER (WHERE role = 'user')::integer AS user_messages,
           count(*) FILTER (WHERE role = 'assistant')::integer AS assistant_messages,
           count(*) FILTER (WHERE role = 'system')::integer AS system_messages,
           count(*) FILTER (WHERE role = 'tool')::integer AS tool_messages,
           avg(latency_ms) FILTER (WHERE role = 'assistant')::double precision AS avg_latency_ms
      FROM public.agent_messages
     GROUP BY session_id
), tool_counts AS (
    SELECT session_id,
           count(*)::integer AS tool_calls,
           count(*) FILTER (WHERE status = 'success')::integer AS tool_calls_succeeded
      FROM public.agent_tool_calls
     GROUP BY session_id
), feedback AS (
    SELECT session_id, count(*)::integer AS feedback_count, avg(rating) AS avg_rating
      FROM public.agent_feedback
     GROUP BY session_id
)
SELECT s.id AS session_id,
       s.user_id,
       coalesce(m.user_messages, 0) AS user_messages,
       coalesce(m.assistant_messages, 0) AS assistant_messages,
       coalesce(m.system_messages, 0) AS system_messages,
       coalesce(m.tool_messages, 0) AS tool_messages,
       coalesce(t.tool_calls, 0) AS tool_calls,
       coalesce(t.tool_calls_succeeded, 0) AS tool_calls_succeeded,
       round(t.tool_calls_succeeded::numeric / nullif(t.tool_calls, 0), 4)::numeric(5, 4)
           AS tool_success_rate,
       s.input_tokens,
       s.output_tokens,
       s.total_tokens,
       s.total_cost,
       extract(epoch FROM coalesce(s.ended_at, s.last_activity_at) - s.started_at)::double precision
           AS duration_seconds,
       m.avg_latency_ms,
       coalesce(f.feedback_count, 0) AS feedback_count,
       round(f.avg_rating, 2)::numeric(4, 2) AS avg_rating,
       now() AS refreshed_at
  FROM public.agent_sessions s
  LEFT JOIN message_counts m ON m.session_id = s.id
  LEFT JOIN tool_counts t ON t.session_id = s.id
  LEFT JOIN feedback f ON f.session_id = s.id;
CREATE UNIQUE INDEX IF NOT EXISTS agent_session_stats_session_id ON public.agent_session_stats (session_id);
""",
        ),
        DefineSQL(
            name="public.agent_session_stats_visible",
            sha256="75e78e6310acef98ed8842890fd97f8dadba57f48a14262e720603d675b12848",
            kind="views",
            adopted=True,
            sql=r"""-- agent_session_stats_visible: the rows of the materialized view the caller may see, for the
-- runtime role (which has no grant on the materialized view itself). security_invoker, so the
-- caller's identity reaches get_agent_session_stats(), which filters by it.
CREATE OR REPLACE VIEW public.agent_session_stats_visible WITH (security_invoker = true) AS
    SELECT * FROM public.get_agent_session_stats();
GRANT SELECT ON public.agent_session_stats_visible TO witchcraft_app;
""",
        ),
    ]
