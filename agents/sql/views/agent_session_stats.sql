-- agent_session_stats: pre-computed statistics per agent session.
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
