-- Recording usage on its fast path (bench/README.md, issue 10): the same results as before
-- (usage/sql/0003_usage_functions.sql, 0004_usage_batch.sql) in less time.
--
-- record_ai_usage, second version:
-- * a request placed in a past day (p_created_at) also goes to that day's all-users total when
--   daily maintenance has already counted the day (ai_usage_daily_totals, usage/sql/0005);
-- * the user, the model and its provider are read in one statement instead of three;
-- * the quota row is locked first as before, and rolled forward only when its period has ended
--   (its own period_end says so), not by a call that finds nothing to do on nearly every call;
-- * raise_quota_alerts runs only when the booked quota reached 80 % of a limit
--   (quota_may_alert, billing/sql/0006_quota_fast_path.sql): below it there is nothing to raise.
--
-- record_ai_usage_batch, second version:
-- * the records are parsed once each (the parsed CTE is MATERIALIZED: inlined, each of its
--   columns was parsed again wherever it was used, ~180 helper calls for one record);
-- * agent messages and sessions are looked up by primary key per record (the planner used to
--   hash the whole agent_sessions table for a batch of one);
-- * the same roll-forward and alert shortcuts as record_ai_usage.
-- Both run their statements with generic plans (SET plan_cache_mode): with the default, the
-- plan cache kept choosing custom plans, planning the batch's validation statement again on
-- every call (a quarter of a batch of one's time). The generic plans are as good for one record as
-- for 1,000 (measured: bench/README.md).
-- The JSON helpers lose their SET search_path so that PostgreSQL inlines them into the batch
-- function's statements (a SET clause forbids inlining; each call then cost a function call
-- with a configuration change). They are not SECURITY DEFINER and only their owner may call
-- them; their caller pins its search_path, which is what they then resolve in.
-- ai_usage_batch_count(value, max): a JSON whole number between 0 and max; NULL when the value is
-- absent or JSON null; -1 for anything else (wrong type, fraction, negative, too large).
CREATE OR REPLACE FUNCTION public.ai_usage_batch_count(p_value jsonb, p_max bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
        WHEN jsonb_typeof(p_value) = 'number' AND p_value::text ~ '^[0-9]{1,18}$'
             AND p_value::text::bigint <= p_max THEN p_value::text::bigint
        ELSE -1
    END
$$;
REVOKE ALL ON FUNCTION public.ai_usage_batch_count(jsonb, bigint) FROM PUBLIC;
