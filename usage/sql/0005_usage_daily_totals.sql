-- Every user's usage together per UTC day, provider and model (bench/README.md, issue 10): the
-- staff dashboard's charts and tables summed every user's ai_usage_daily rows of the period, so
-- their time grew with the number of users (x3 to x4 from 1,000 to 10,000 users). Now they read
-- ai_usage_daily_totals for the days it covers and ai_usage_daily only for the days after
-- (today, and any day daily maintenance has not covered yet).
--
-- ai_usage_daily_totals holds every day before ai_usage_totals_state.covered_before, exactly:
-- * refresh_usage_daily_totals(p_days) recomputes the days from covered_before (or p_days days
--   back, whichever is earlier; every day when p_days is NULL) up to yesterday from
--   ai_usage_daily, and moves covered_before to today. Daily maintenance runs it with 3 days;
--   seed_demo with NULL after its load.
-- * record_ai_usage adds a request placed in a covered day (p_created_at, service context
--   only) to its total in the same transaction. No other flow writes a past day: the batch
--   function and the API place every row at now().
-- Staff (admins) read both tables; nobody writes them but these SECURITY DEFINER functions.

ALTER TABLE public.ai_usage_daily_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_daily_totals FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.ai_usage_daily_totals TO witchcraft_app;
CREATE POLICY ai_usage_daily_totals_select_admin ON public.ai_usage_daily_totals
    FOR SELECT TO witchcraft_app USING ((SELECT auth.is_admin()));

ALTER TABLE public.ai_usage_totals_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_usage_totals_state FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.ai_usage_totals_state TO witchcraft_app;
CREATE POLICY ai_usage_totals_state_select_admin ON public.ai_usage_totals_state
    FOR SELECT TO witchcraft_app USING ((SELECT auth.is_admin()));

-- usage_totals_recompute(from, before): the all-users totals of the days [from, before)
-- computed again from ai_usage_daily; the rows written. Internal: run by the refresh functions
-- (SECURITY DEFINER, after their checks and under their lock), not granted to the runtime role.
CREATE OR REPLACE FUNCTION public.usage_totals_recompute(p_from date, p_before date)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows integer;
BEGIN
    DELETE FROM public.ai_usage_daily_totals t
     WHERE t.usage_date >= p_from AND t.usage_date < p_before;
    INSERT INTO public.ai_usage_daily_totals
           (usage_date, provider_id, model_id, request_count, success_count, error_count,
            input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, total_tokens,
            cost, latency_ms_sum, latency_count, updated_at)
    SELECT d.usage_date, d.provider_id, d.model_id, sum(d.request_count), sum(d.success_count),
           sum(d.error_count), sum(d.input_tokens), sum(d.output_tokens),
           sum(d.cached_input_tokens), sum(d.reasoning_tokens), sum(d.total_tokens),
           sum(d.cost), sum(d.latency_ms_sum), sum(d.latency_count), now()
      FROM public.ai_usage_daily d
     WHERE d.usage_date >= p_from AND d.usage_date < p_before
     GROUP BY d.usage_date, d.provider_id, d.model_id;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.usage_totals_recompute(date, date) FROM PUBLIC;

-- refresh_usage_daily_totals(p_days): see above. Returns the rows written. Service context or
-- an admin; one refresh at a time (a transaction-level advisory lock).
CREATE OR REPLACE FUNCTION public.refresh_usage_daily_totals(p_days integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_covered date;
    v_from date;
    v_rows integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'refresh_usage_daily_totals: staff or the service context only'
            USING ERRCODE = '42501';
    END IF;
    IF p_days IS NOT NULL AND p_days < 0 THEN
        RAISE EXCEPTION 'days must be 0 or more, got %', p_days USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('refresh_usage_daily_totals', 0));
    SELECT s.covered_before INTO v_covered FROM public.ai_usage_totals_state s WHERE s.id = 1;
    v_from := CASE WHEN p_days IS NULL OR v_covered IS NULL THEN '-infinity'::date
                   ELSE least(v_covered, v_today - p_days) END;

    v_rows := public.usage_totals_recompute(v_from, v_today);

    INSERT INTO public.ai_usage_totals_state AS s (id, covered_before, refreshed_at)
    VALUES (1, v_today, now())
    ON CONFLICT (id) DO UPDATE
       SET covered_before = greatest(s.covered_before, excluded.covered_before),
           refreshed_at = excluded.refreshed_at;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_usage_daily_totals(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_usage_daily_totals(integer) TO witchcraft_app;

-- usage_daily_totals_add(...): add one request to its covered day's total (internal to
-- record_ai_usage; nothing when the day is not covered yet: the next refresh counts it).
CREATE OR REPLACE FUNCTION public.usage_daily_totals_add(
    p_day date, p_provider_id integer, p_model_id integer, p_success integer,
    p_input_tokens bigint, p_output_tokens bigint, p_cached_input_tokens bigint,
    p_reasoning_tokens bigint, p_total_tokens bigint, p_cost numeric, p_latency_ms bigint,
    p_latency_count integer
) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, public, pg_temp
AS $$
    INSERT INTO public.ai_usage_daily_totals AS t
           (usage_date, provider_id, model_id, request_count, success_count, error_count,
            input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, total_tokens,
            cost, latency_ms_sum, latency_count, updated_at)
    SELECT p_day, p_provider_id, p_model_id, 1, p_success, 1 - p_success, p_input_tokens,
           p_output_tokens, p_cached_input_tokens, p_reasoning_tokens, p_total_tokens, p_cost,
           p_latency_ms, p_latency_count, now()
     WHERE p_day < (SELECT s.covered_before FROM public.ai_usage_totals_state s WHERE s.id = 1)
    ON CONFLICT (usage_date, provider_id, model_id) DO UPDATE
       SET request_count = t.request_count + excluded.request_count,
           success_count = t.success_count + excluded.success_count,
           error_count = t.error_count + excluded.error_count,
           input_tokens = t.input_tokens + excluded.input_tokens,
           output_tokens = t.output_tokens + excluded.output_tokens,
           cached_input_tokens = t.cached_input_tokens + excluded.cached_input_tokens,
           reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens,
           total_tokens = t.total_tokens + excluded.total_tokens,
           cost = t.cost + excluded.cost,
           latency_ms_sum = t.latency_ms_sum + excluded.latency_ms_sum,
           latency_count = t.latency_count + excluded.latency_count,
           updated_at = excluded.updated_at
$$;
REVOKE ALL ON FUNCTION public.usage_daily_totals_add(
    date, integer, integer, integer, bigint, bigint, bigint, bigint, bigint, numeric, bigint,
    integer) FROM PUBLIC;

-- daily_maintenance(), second version (first: accounts/sql/0004_daily_maintenance.sql): the
-- same, and the usage totals of the last days.
-- daily_maintenance(): the seed's daily job, in one transaction. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity
--   audit_logs_archived          audit events older than 90 days moved to audit_logs_archive
--   partitions_created           ai_usage_requests partitions created for the next 3 months
--   session_stats_rows           rows of agent_session_stats after its refresh
--   usage_totals_rows            rows of ai_usage_daily_totals written (the last 3 days, and
--                                any day not covered yet: refresh_usage_daily_totals)
-- Idempotent: a second run finds nothing to do (every count 0 but session_stats_rows and
-- usage_totals_rows, which are recomputed).
CREATE OR REPLACE FUNCTION public.daily_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
    v_sessions integer;
    v_archived integer;
    v_partitions integer;
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

    v_archived := public.cleanup_old_audit_logs(90);

    -- ensure_usage_partitions sets a 5 s lock_timeout for the rest of the transaction: keep it
    -- to the partition work.
    v_lock_timeout := current_setting('lock_timeout');
    v_partitions := public.ensure_usage_partitions(3);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);

    v_stats := public.refresh_agent_session_stats();
    v_totals := public.refresh_usage_daily_totals(3);

    RETURN jsonb_build_object(
        'expired_tokens_deleted', v_tokens,
        'reset_tokens_deleted', v_resets,
        'verification_tokens_deleted', v_verifications,
        'sessions_ended', v_sessions,
        'audit_logs_archived', v_archived,
        'partitions_created', v_partitions,
        'session_stats_rows', v_stats,
        'usage_totals_rows', v_totals);
END
$$;
REVOKE ALL ON FUNCTION public.daily_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.daily_maintenance() TO witchcraft_app;

-- The totals of every day so far.
SELECT public.refresh_usage_daily_totals(NULL);
