-- get_user_activity_summary(user, days): one row per UTC day of the p_days days ending today
-- (UTC), oldest first, idle days included with zeros. Requests, failures (every outcome but
-- success), tokens and cost come from the daily roll-up (never the raw rows); sessions started
-- and messages from agent_sessions / agent_messages (by their UTC day). p_days: 1 to 366.
CREATE OR REPLACE FUNCTION public.get_user_activity_summary(
    p_user_id bigint, p_days integer DEFAULT 30
) RETURNS TABLE(
    day date,
    requests bigint,
    failures bigint,
    tokens bigint,
    cost numeric,
    sessions_started bigint,
    messages bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_last date := (now() AT TIME ZONE 'UTC')::date;
    v_first date;
    v_from timestamptz;
    v_to timestamptz;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 366 THEN
        RAISE EXCEPTION 'days must be between 1 and 366, got %', p_days USING ERRCODE = '22023';
    END IF;
    v_first := v_last - (p_days - 1);
    v_from := v_first::timestamp AT TIME ZONE 'UTC';
    v_to := (v_last + 1)::timestamp AT TIME ZONE 'UTC';

    RETURN QUERY
    WITH calendar AS (
        SELECT v_first + i AS d FROM generate_series(0, p_days - 1) AS i
    ), usage_days AS (
        SELECT ud.usage_date AS d,
               sum(ud.request_count)::bigint AS n_requests,
               sum(ud.error_count)::bigint AS n_failures,
               sum(ud.total_tokens)::bigint AS n_tokens,
               sum(ud.cost) AS amount
          FROM public.ai_usage_daily ud
         WHERE ud.user_id = p_user_id AND ud.usage_date BETWEEN v_first AND v_last
         GROUP BY ud.usage_date
    ), session_days AS (
        SELECT (s.started_at AT TIME ZONE 'UTC')::date AS d, count(*)::bigint AS n
          FROM public.agent_sessions s
         WHERE s.user_id = p_user_id AND s.started_at >= v_from AND s.started_at < v_to
         GROUP BY 1
    ), message_days AS (
        SELECT (am.created_at AT TIME ZONE 'UTC')::date AS d, count(*)::bigint AS n
          FROM public.agent_messages am
         WHERE am.user_id = p_user_id AND am.created_at >= v_from AND am.created_at < v_to
         GROUP BY 1
    )
    SELECT c.d,
           coalesce(u.n_requests, 0)::bigint,
           coalesce(u.n_failures, 0)::bigint,
           coalesce(u.n_tokens, 0)::bigint,
           coalesce(u.amount, 0)::numeric,
           coalesce(sd.n, 0)::bigint,
           coalesce(md.n, 0)::bigint
      FROM calendar c
      LEFT JOIN usage_days u ON u.d = c.d
      LEFT JOIN session_days sd ON sd.d = c.d
      LEFT JOIN message_days md ON md.d = c.d
     ORDER BY c.d;
END
$$;
REVOKE ALL ON FUNCTION public.get_user_activity_summary(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_user_activity_summary(bigint, integer) TO witchcraft_app;
