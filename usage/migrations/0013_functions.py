"""The functions usage owns, adopted from its numbered SQL files.

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
            name="public.ai_provider_is_active",
            sha256="26607518f0013e0b078248fec3412f9210112e0fc22487849615eb4ff7a873bc",
            adopted=True,
            sql=r"""-- The public catalog shows a model only when it and its provider are active (the seed: "active
-- models of active providers"); staff see every row. The provider's state is read through
-- ai_provider_is_active(), an invoker function: the runtime role sees active providers only
-- (their own policy), staff all of them, which the admin branch covers anyway.
CREATE OR REPLACE FUNCTION public.ai_provider_is_active(p_provider_id bigint) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM public.ai_providers p
                    WHERE p.id = p_provider_id AND p.is_active)
$$;
REVOKE ALL ON FUNCTION public.ai_provider_is_active(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ai_provider_is_active(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.ai_usage_batch_count",
            sha256="fded481f87668a3065955162a1a900bd89232e0be3a56f89801ef016e40380c8",
            adopted=True,
            sql=r"""-- Recording usage on its fast path (bench/README.md, issue 10): the same results as before
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
""",
        ),
        DefineSQL(
            name="public.ai_usage_batch_is_text",
            sha256="ba6287439b9d0b25017813a2b9b977804be99cf9f0340919762eba89fa92fcaf",
            adopted=True,
            sql=r"""-- ai_usage_batch_is_text(value, max): is the value absent, JSON null, or a string of at most max
-- characters?
CREATE OR REPLACE FUNCTION public.ai_usage_batch_is_text(p_value jsonb, p_max integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_value IS NULL OR jsonb_typeof(p_value) = 'null'
        OR (jsonb_typeof(p_value) = 'string' AND length(p_value #>> '{}') <= p_max)
$$;
REVOKE ALL ON FUNCTION public.ai_usage_batch_is_text(jsonb, integer) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.archive_usage_partitions",
            sha256="8b4f7088bb300132b82d93bb51a0c58b9971da7100694b899bfc48643aefc420",
            adopted=True,
            sql=r"""-- archive_usage_partitions(p_after_months, p_max_partitions): move at most p_max_partitions
-- monthly partitions of public.ai_usage_requests whose whole month ended p_after_months months
-- ago or earlier (UTC: with 12, on 2026-12-07 every month up to 2025-11), oldest first, to the
-- archive. Returns {"archived": n, "waiting": m}: m old enough partitions still live (the bound,
-- or a lock not obtained: the next run takes them). Service context only.
--
-- DETACH PARTITION ... CONCURRENTLY cannot run inside a transaction block, and daily maintenance
-- is one transaction: the plain DETACH takes an ACCESS EXCLUSIVE lock on ai_usage_requests for
-- a moment (no data is copied). As ensure_usage_partitions, it waits at most lock_timeout for
-- it (2 s here, so requests are never queued long behind it), three times with a pause between,
-- then leaves the partition for the next run instead of failing the maintenance.
-- The DEFAULT partition is never archived (rows wait there only when their month's partition is
-- missing; ensure_usage_partitions(months_ahead, months_back) places them).
CREATE OR REPLACE FUNCTION public.archive_usage_partitions(
    p_after_months integer, p_max_partitions integer
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_before date;
    v_part record;
    v_archived integer := 0;
    v_waiting integer := 0;
    v_done boolean;
    v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'archive_usage_partitions: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_after_months IS NULL OR p_after_months NOT BETWEEN 1 AND 120 THEN
        RAISE EXCEPTION 'archive_usage_partitions: months must be between 1 and 120, not %',
            coalesce(p_after_months::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_max_partitions IS NULL OR p_max_partitions NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'archive_usage_partitions: partitions per run must be between 0 and 120, not %',
            coalesce(p_max_partitions::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_before := (pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')
                 - pg_catalog.make_interval(months => p_after_months))::date;

    FOR v_part IN
        SELECT m.relname, m.first_day
          FROM (SELECT c.relname,
                       pg_catalog.to_date(substring(c.relname FROM 'y([0-9]{4}m[0-9]{2})$'),
                                          'YYYY"m"MM') AS first_day
                  FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'public.ai_usage_requests'::regclass
                   AND c.relname ~ '^ai_usage_requests_y[0-9]{4}m[0-9]{2}$') m
         WHERE (m.first_day + interval '1 month')::date <= v_before
         ORDER BY m.first_day
    LOOP
        IF v_archived >= p_max_partitions
           OR pg_catalog.to_regclass('archive.' || pg_catalog.quote_ident(v_part.relname)) IS NOT NULL
        THEN
            v_waiting := v_waiting + 1;
            CONTINUE;
        END IF;
        v_done := false;
        FOR v_attempt IN 1..3 LOOP
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
                EXECUTE pg_catalog.format(
                    'ALTER TABLE public.ai_usage_requests DETACH PARTITION public.%I',
                    v_part.relname);
                EXECUTE pg_catalog.format('ALTER TABLE public.%I SET SCHEMA archive',
                                          v_part.relname);
                EXECUTE pg_catalog.format(
                    'ALTER TABLE archive.ai_usage_requests ATTACH PARTITION archive.%I'
                    ' FOR VALUES FROM (%L) TO (%L)', v_part.relname,
                    v_part.first_day::timestamp AT TIME ZONE 'UTC',
                    (v_part.first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
                -- As every partition: queried directly it would skip the parent's policies.
                EXECUTE pg_catalog.format('ALTER TABLE archive.%I ENABLE ROW LEVEL SECURITY',
                                          v_part.relname);
                EXECUTE pg_catalog.format('ALTER TABLE archive.%I FORCE ROW LEVEL SECURITY',
                                          v_part.relname);
                EXECUTE pg_catalog.format('REVOKE ALL ON archive.%I FROM PUBLIC, witchcraft_app',
                                          v_part.relname);
                v_done := true;
            EXCEPTION WHEN lock_not_available THEN
                PERFORM pg_catalog.pg_sleep(v_attempt);
            END;
            EXIT WHEN v_done;
        END LOOP;
        IF v_done THEN
            v_archived := v_archived + 1;
        ELSE
            v_waiting := v_waiting + 1;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
    RETURN pg_catalog.jsonb_build_object('archived', v_archived, 'waiting', v_waiting);
END
$$;
REVOKE ALL ON FUNCTION public.archive_usage_partitions(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.archive_usage_partitions(integer, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.ensure_usage_partitions",
            sha256="46f79965e2f4f734f3209d183a11f8e957cd9b95a0c644e473a64971a050e6b3",
            adopted=True,
            sql=r"""-- ensure_usage_partitions(months_ahead, months_back): create the monthly partitions from
-- months_back months ago to months_ahead months ahead (UTC) that do not exist yet, moving rows
-- of those months out of the DEFAULT partition first. Returns how many it created. Idempotent.
CREATE OR REPLACE FUNCTION public.ensure_usage_partitions(months_ahead integer, months_back integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    first_day date;
    lower_bound timestamptz;
    upper_bound timestamptz;
    partition_name text;
    parent_rls boolean;
    parent_force_rls boolean;
    created integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 120
       OR months_back IS NULL OR months_back NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'ensure_usage_partitions: months_ahead and months_back must be between 0 and 120'
            USING ERRCODE = '22023';
    END IF;
    -- Attaching waits for readers of the table: give up rather than queue everyone behind us.
    PERFORM set_config('lock_timeout', '5s', true);
    SELECT relrowsecurity, relforcerowsecurity INTO parent_rls, parent_force_rls
      FROM pg_class WHERE oid = 'public.ai_usage_requests'::regclass;

    FOR step IN -months_back..months_ahead LOOP
        first_day := (this_month + make_interval(months => step))::date;
        partition_name := format('ai_usage_requests_y%sm%s',
                                 to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
        CONTINUE WHEN to_regclass('public.' || partition_name) IS NOT NULL;

        lower_bound := first_day::timestamp AT TIME ZONE 'UTC';
        upper_bound := (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE public.%I (LIKE public.ai_usage_requests'
                       ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition_name);
        -- Rows of this month that waited in DEFAULT would make the ATTACH fail: move them.
        EXECUTE format('WITH moved AS (DELETE FROM public.ai_usage_requests_default'
                       ' WHERE created_at >= %L AND created_at < %L RETURNING *)'
                       ' INSERT INTO public.%I SELECT * FROM moved',
                       lower_bound, upper_bound, partition_name);
        EXECUTE format('ALTER TABLE public.ai_usage_requests ATTACH PARTITION public.%I'
                       ' FOR VALUES FROM (%L) TO (%L)', partition_name, lower_bound, upper_bound);
        -- Querying a partition directly skips the parent's policies: protect it the same way.
        IF parent_rls THEN
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', partition_name);
        END IF;
        IF parent_force_rls THEN
            EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', partition_name);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION public.ensure_usage_partitions(integer, integer) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.get_user_activity_summary",
            sha256="15ea1686e19e4e7fbcc2f772a0289e8b3a98122dd128449cdfc12bcbf659f484",
            adopted=True,
            sql=r"""-- get_user_activity_summary(user, days): one row per UTC day of the p_days days ending today
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
""",
        ),
        DefineSQL(
            name="public.record_ai_usage",
            sha256="b60e0255fa00a42c598efc8802b766c09a03dd651c7fcf120d705f99f558a815",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.record_ai_usage(
    p_user_id bigint,
    p_provider_id integer,
    p_model_id integer,
    p_input_tokens integer,
    p_output_tokens integer,
    p_request_id text DEFAULT NULL,
    p_cached_input_tokens integer DEFAULT 0,
    p_reasoning_tokens integer DEFAULT 0,
    p_latency_ms integer DEFAULT NULL,
    p_time_to_first_token_ms integer DEFAULT NULL,
    p_status text DEFAULT 'success',
    p_error_code text DEFAULT NULL,
    p_agent_session_id bigint DEFAULT NULL,
    p_agent_message_id bigint DEFAULT NULL,
    p_reservation_id bigint DEFAULT NULL,
    p_metadata jsonb DEFAULT '{}',
    p_created_at timestamptz DEFAULT NULL,
    p_cost numeric DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    SET plan_cache_mode = force_generic_plan  -- see the top of this file
AS $$
DECLARE
    v_model public.ai_models%ROWTYPE;
    v_user_known boolean;
    v_available boolean;
    v_request_id text := nullif(p_request_id, '');
    v_cached integer := coalesce(p_cached_input_tokens, 0);
    v_reasoning integer := coalesce(p_reasoning_tokens, 0);
    v_status text := coalesce(p_status, 'success');
    v_error_code text := coalesce(p_error_code, '');
    v_reservation public.quota_reservations%ROWTYPE;
    v_held_tokens bigint := 0;
    v_held_cost numeric := 0;
    v_metadata jsonb := coalesce(p_metadata, '{}');
    v_session_id bigint := p_agent_session_id;
    v_owner bigint;
    v_message_session bigint;
    v_created_at timestamptz;
    v_usage_id bigint;
    v_total bigint;
    v_cost numeric;
    v_success integer;
    v_latency_count integer;
    v_quota public.user_quotas%ROWTYPE;
    v_in_period boolean;
BEGIN
    PERFORM auth.require_record_for(p_user_id);
    IF p_created_at IS NOT NULL AND NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context may set p_created_at' USING ERRCODE = '42501';
    END IF;
    IF p_cost IS NOT NULL AND NOT auth.is_service() THEN
        RAISE EXCEPTION 'only the service context may set p_cost: the catalog prices requests'
            USING ERRCODE = '42501';
    END IF;
    IF p_cost < 0 THEN
        RAISE EXCEPTION 'cost must be non-negative, got %', p_cost USING ERRCODE = '22023';
    END IF;
    v_created_at := coalesce(p_created_at, now());

    -- 1. Validation: nothing is written before all of it passed.
    -- The user, the model and its provider in one statement.
    SELECT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id), m.provider_id,
           m.input_price_per_million, m.output_price_per_million,
           m.cached_input_price_per_million, m.is_active AND pr.is_active
      INTO v_user_known, v_model.provider_id, v_model.input_price_per_million,
           v_model.output_price_per_million, v_model.cached_input_price_per_million,
           v_available
      FROM (VALUES (1)) AS one(x)
      LEFT JOIN public.ai_models m ON m.id = p_model_id
      LEFT JOIN public.ai_providers pr ON pr.id = m.provider_id;
    IF NOT v_user_known THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = '22023';
    END IF;
    IF v_model.provider_id IS NULL OR v_model.provider_id IS DISTINCT FROM p_provider_id THEN
        RAISE EXCEPTION 'model % is not a model of provider %', p_model_id, p_provider_id
            USING ERRCODE = '22023';
    END IF;
    -- Only what the catalog offers now (the batch function refuses the same way).
    IF NOT v_available THEN
        RAISE EXCEPTION 'model % (or its provider) is not active', p_model_id
            USING ERRCODE = '22023';
    END IF;
    IF p_input_tokens IS NULL OR p_input_tokens < 0 OR p_output_tokens IS NULL
       OR p_output_tokens < 0 OR v_cached < 0 OR v_reasoning < 0 THEN
        RAISE EXCEPTION 'token counts must be non-negative numbers' USING ERRCODE = '22023';
    END IF;
    IF v_cached > p_input_tokens THEN
        RAISE EXCEPTION 'cached input tokens (%) cannot exceed input tokens (%)',
            v_cached, p_input_tokens USING ERRCODE = '22023';
    END IF;
    IF v_reasoning > p_output_tokens THEN
        RAISE EXCEPTION 'reasoning tokens (%) cannot exceed output tokens (%)',
            v_reasoning, p_output_tokens USING ERRCODE = '22023';
    END IF;
    IF v_status NOT IN ('success', 'error', 'timeout', 'cancelled', 'rejected') THEN
        RAISE EXCEPTION 'status % is not one of success, error, timeout, cancelled, rejected',
            v_status USING ERRCODE = '22023';
    END IF;
    IF p_reservation_id <= 0 THEN
        RAISE EXCEPTION 'reservation_id must be a positive whole number' USING ERRCODE = '22023';
    END IF;
    IF p_latency_ms < 0 OR p_time_to_first_token_ms < 0 THEN
        RAISE EXCEPTION 'latencies must be non-negative' USING ERRCODE = '22023';
    END IF;
    IF length(v_request_id) > 100 THEN
        RAISE EXCEPTION 'request id is longer than 100 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_error_code) > 100 THEN
        RAISE EXCEPTION 'error code is longer than 100 characters' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(v_metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF p_agent_message_id IS NOT NULL THEN
        SELECT am.user_id, am.session_id INTO v_owner, v_message_session
          FROM public.agent_messages am WHERE am.id = p_agent_message_id;
        IF v_owner IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'agent message % is not a message of user %', p_agent_message_id,
                p_user_id USING ERRCODE = '22023';
        END IF;
        IF v_session_id IS NOT NULL AND v_session_id <> v_message_session THEN
            RAISE EXCEPTION 'agent message % is not a message of agent session %',
                p_agent_message_id, v_session_id USING ERRCODE = '22023';
        END IF;
        v_session_id := v_message_session;
    END IF;
    IF v_session_id IS NOT NULL THEN
        SELECT s.user_id INTO v_owner FROM public.agent_sessions s WHERE s.id = v_session_id;
        IF v_owner IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'agent session % is not a session of user %', v_session_id,
                p_user_id USING ERRCODE = '22023';
        END IF;
    END IF;
    v_request_id := coalesce(v_request_id, gen_random_uuid()::text);

    -- 2. The quota row first (rolled forward if its period ended), and the user's expired
    -- holds given back.
    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF FOUND THEN
        IF v_quota.period_end <= now() THEN
            PERFORM public.roll_quota_forward(p_user_id);
            SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
        END IF;
        IF public.quota_has_expired_holds(p_user_id) THEN
            PERFORM public.quota_reservations_release_expired(p_user_id);
        END IF;
    END IF;

    -- 3. The key row: a retry of a recorded request changes nothing.
    IF p_agent_message_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM public.ai_usage_request_keys k
         WHERE k.agent_message_id = p_agent_message_id
           AND NOT (k.user_id = p_user_id AND k.request_id = v_request_id)
    ) THEN
        RAISE EXCEPTION 'agent message % already has a usage record', p_agent_message_id
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.ai_usage_request_keys AS k
           (usage_id, user_id, request_id, agent_message_id, created_at)
    VALUES (nextval('public.ai_usage_requests_id_seq'), p_user_id, v_request_id,
            p_agent_message_id, v_created_at)
    ON CONFLICT (user_id, request_id) DO NOTHING
    RETURNING k.usage_id INTO v_usage_id;
    IF v_usage_id IS NULL THEN
        SELECT k.usage_id INTO v_usage_id
          FROM public.ai_usage_request_keys k
         WHERE k.user_id = p_user_id AND k.request_id = v_request_id;
        RETURN v_usage_id;
    END IF;

    -- 3b. The reservation it names: the user's, open and unexpired, settled now by this record.
    -- Its hold counts only in the quota period it was added to. A refusal raises, so the key
    -- row above is undone with everything else.
    IF p_reservation_id IS NOT NULL THEN
        SELECT r.* INTO v_reservation
          FROM public.quota_reservations r WHERE r.id = p_reservation_id FOR UPDATE;
        IF NOT FOUND OR v_reservation.user_id IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'reservation % not found', p_reservation_id
                USING ERRCODE = 'WC404', COLUMN = 'reservation_id';
        ELSIF v_reservation.settled_at IS NOT NULL THEN
            RAISE EXCEPTION 'reservation % was already settled by request_id %', p_reservation_id,
                quote_literal(v_reservation.request_id)
                USING ERRCODE = 'WC409', COLUMN = 'reservation_id';
        ELSIF v_reservation.released_at IS NOT NULL OR v_reservation.expires_at <= now() THEN
            RAISE EXCEPTION 'reservation % expired at % and its hold was given back: record the '
                'usage without reservation_id', p_reservation_id, v_reservation.expires_at
                USING ERRCODE = 'WC409', COLUMN = 'reservation_id';
        END IF;
        UPDATE public.quota_reservations AS r
           SET settled_at = now(), usage_id = v_usage_id, request_id = v_request_id
         WHERE r.id = p_reservation_id;
        IF v_reservation.period_start = v_quota.period_start THEN
            v_held_tokens := v_reservation.tokens;
            v_held_cost := v_reservation.cost;
        END IF;
    END IF;

    -- 4. The usage row, priced from the catalog.
    v_total := p_input_tokens::bigint + p_output_tokens;
    v_cost := round(coalesce(
        p_cost,
        ((p_input_tokens - v_cached)::numeric * v_model.input_price_per_million
         + v_cached::numeric * v_model.cached_input_price_per_million
         + p_output_tokens::numeric * v_model.output_price_per_million) / 1000000), 6);
    v_success := CASE WHEN v_status = 'success' THEN 1 ELSE 0 END;
    v_latency_count := CASE WHEN p_latency_ms IS NULL THEN 0 ELSE 1 END;

    INSERT INTO public.ai_usage_requests
           (id, created_at, user_id, provider_id, model_id, agent_session_id, agent_message_id,
            reservation_id, request_id, input_tokens, output_tokens, cached_input_tokens,
            reasoning_tokens, total_tokens, cost, input_price_per_million,
            output_price_per_million, cached_input_price_per_million, latency_ms,
            time_to_first_token_ms, status, error_code, error_message, metadata)
    VALUES (v_usage_id, v_created_at, p_user_id, p_provider_id, p_model_id, v_session_id,
            p_agent_message_id, p_reservation_id, v_request_id, p_input_tokens, p_output_tokens, v_cached,
            v_reasoning, v_total, v_cost, v_model.input_price_per_million,
            v_model.output_price_per_million, v_model.cached_input_price_per_million,
            p_latency_ms, p_time_to_first_token_ms, v_status, v_error_code, '', v_metadata);

    -- 5. The roll-ups (UTC day and month of created_at).
    INSERT INTO public.ai_usage_daily AS d
           (user_id, usage_date, provider_id, model_id, request_count, success_count,
            error_count, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
            total_tokens, cost, latency_ms_sum, latency_count, updated_at)
    VALUES (p_user_id, (v_created_at AT TIME ZONE 'UTC')::date, p_provider_id, p_model_id, 1,
            v_success, 1 - v_success, p_input_tokens, p_output_tokens, v_cached, v_reasoning,
            v_total, v_cost, coalesce(p_latency_ms, 0), v_latency_count, now())
    ON CONFLICT (user_id, usage_date, provider_id, model_id) DO UPDATE
       SET request_count = d.request_count + excluded.request_count,
           success_count = d.success_count + excluded.success_count,
           error_count = d.error_count + excluded.error_count,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cached_input_tokens = d.cached_input_tokens + excluded.cached_input_tokens,
           reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
           total_tokens = d.total_tokens + excluded.total_tokens,
           cost = d.cost + excluded.cost,
           latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
           latency_count = d.latency_count + excluded.latency_count,
           updated_at = excluded.updated_at;

    INSERT INTO public.ai_usage_monthly AS mo
           (user_id, year, month, request_count, success_count, error_count, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens, total_tokens, cost,
            latency_ms_sum, latency_count, updated_at)
    VALUES (p_user_id, extract(year FROM v_created_at AT TIME ZONE 'UTC')::smallint,
            extract(month FROM v_created_at AT TIME ZONE 'UTC')::smallint, 1, v_success,
            1 - v_success, p_input_tokens, p_output_tokens, v_cached, v_reasoning, v_total,
            v_cost, coalesce(p_latency_ms, 0), v_latency_count, now())
    ON CONFLICT (user_id, year, month) DO UPDATE
       SET request_count = mo.request_count + excluded.request_count,
           success_count = mo.success_count + excluded.success_count,
           error_count = mo.error_count + excluded.error_count,
           input_tokens = mo.input_tokens + excluded.input_tokens,
           output_tokens = mo.output_tokens + excluded.output_tokens,
           cached_input_tokens = mo.cached_input_tokens + excluded.cached_input_tokens,
           reasoning_tokens = mo.reasoning_tokens + excluded.reasoning_tokens,
           total_tokens = mo.total_tokens + excluded.total_tokens,
           cost = mo.cost + excluded.cost,
           latency_ms_sum = mo.latency_ms_sum + excluded.latency_ms_sum,
           latency_count = mo.latency_count + excluded.latency_count,
           updated_at = excluded.updated_at;

    -- A request placed in a day the all-users totals already cover (only the service context
    -- may place one: p_created_at) is added to that day's total (usage/sql/0005).
    IF p_created_at IS NOT NULL THEN
        PERFORM public.usage_daily_totals_add(
            (v_created_at AT TIME ZONE 'UTC')::date, p_provider_id, p_model_id, v_success,
            p_input_tokens, p_output_tokens, v_cached, v_reasoning, v_total, v_cost,
            coalesce(p_latency_ms, 0), v_latency_count);
    END IF;

    -- 6. The quota: actual minus what the reservation held (already locked above).
    IF v_quota.user_id IS NOT NULL THEN
        v_in_period := v_created_at >= v_quota.period_start AND v_created_at < v_quota.period_end;
        UPDATE public.user_quotas AS q
           SET tokens_used = greatest(0, q.tokens_used
                                         + CASE WHEN v_in_period THEN v_total ELSE 0 END
                                         - v_held_tokens),
               cost_used = greatest(0, q.cost_used
                                       + CASE WHEN v_in_period THEN v_cost ELSE 0 END
                                       - v_held_cost),
               updated_at = now()
         WHERE q.user_id = p_user_id
        RETURNING q.* INTO v_quota;
        IF public.quota_may_alert(v_quota) THEN
            PERFORM public.raise_quota_alerts(p_user_id);
        END IF;
    END IF;

    RETURN v_usage_id;
END
$$;
REVOKE ALL ON FUNCTION public.record_ai_usage(
    bigint, integer, integer, integer, integer, text, integer, integer, integer, integer, text,
    text, bigint, bigint, bigint, jsonb, timestamp with time zone, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.record_ai_usage(
    bigint, integer, integer, integer, integer, text, integer, integer, integer, integer, text,
    text, bigint, bigint, bigint, jsonb, timestamp with time zone, numeric) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.record_ai_usage_batch",
            sha256="76b01583fc0a9e639fe46dc497d49263c3fcb250401ca2fc01bd7e6b4aecba48",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.record_ai_usage_batch(p_user_id bigint, p_records jsonb)
RETURNS TABLE(
    out_index integer,
    out_request_id text,
    out_status text,
    out_usage_id bigint,
    out_total_tokens bigint,
    out_cost numeric,
    out_error_code text,
    out_error_field text,
    out_error_message text
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    SET plan_cache_mode = force_generic_plan  -- see the top of this file
AS $$
DECLARE
    c_max_records constant integer := 1000;
    c_max_tokens constant bigint := 10000000;        -- per request
    c_max_latency constant bigint := 3600000;        -- one hour, in ms
    c_max_cost constant numeric := 10000;            -- US dollars per request
    c_max_id constant bigint := 9223372036854775807;
    c_max_metadata constant integer := 16384;        -- characters of its JSON text
    v_now timestamptz := now();
    v_rows public.ai_usage_batch_row[];
    v_new_request_ids text[];
    v_new_usage_ids bigint[];
    v_quota public.user_quotas%ROWTYPE;
    v_tokens bigint;
    v_cost numeric;
    v_held_tokens bigint;
    v_held_cost numeric;
BEGIN
    PERFORM auth.require_record_for(p_user_id);
    IF p_records IS NULL OR jsonb_typeof(p_records) <> 'array' THEN
        RAISE EXCEPTION 'records must be a JSON array' USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(p_records) > c_max_records THEN
        RAISE EXCEPTION 'a batch holds at most % records, got %', c_max_records,
            jsonb_array_length(p_records) USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id) THEN
        RAISE EXCEPTION 'unknown user %', p_user_id USING ERRCODE = '22023';
    END IF;

    -- 0. The user's lock first: the quota row (rolled forward if its period ended), the user's
    -- expired holds given back; the reservations the records name are then read under it, so
    -- two batches cannot both settle one reservation.
    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF FOUND THEN
        IF v_quota.period_end <= v_now THEN
            PERFORM public.roll_quota_forward(p_user_id);
            SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
        END IF;
        IF public.quota_has_expired_holds(p_user_id) THEN
            PERFORM public.quota_reservations_release_expired(p_user_id);
        END IF;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('ai_usage:user:' || p_user_id, 0));
    END IF;

    -- 1. Validation, one statement for the whole batch.
    WITH src AS (
        SELECT (e.ord - 1)::integer AS idx,
               jsonb_typeof(e.rec) = 'object' AS is_object,
               CASE WHEN jsonb_typeof(e.rec) = 'object' THEN e.rec ELSE '{}'::jsonb END AS r
          FROM jsonb_array_elements(p_records) WITH ORDINALITY AS e(rec, ord)
    ), parsed AS MATERIALIZED (  -- once per record (inlined, every use re-parsed it)
        SELECT s.idx,
               s.is_object,
               public.ai_usage_batch_is_text(s.r -> 'request_id', 100)
                   AND coalesce(s.r ->> 'request_id', '') <> '' AS request_id_ok,
               s.r ->> 'request_id' AS request_id,
               public.ai_usage_batch_count(s.r -> 'provider_id', 2147483647) AS provider_id,
               public.ai_usage_batch_is_text(s.r -> 'provider', 40) AS provider_ok,
               s.r ->> 'provider' AS provider_slug,
               public.ai_usage_batch_count(s.r -> 'model_id', 2147483647) AS model_id,
               public.ai_usage_batch_is_text(s.r -> 'model', 100) AS model_ok,
               s.r ->> 'model' AS model_name,
               public.ai_usage_batch_count(s.r -> 'input_tokens', c_max_tokens) AS input_tokens,
               public.ai_usage_batch_count(s.r -> 'output_tokens', c_max_tokens) AS output_tokens,
               coalesce(public.ai_usage_batch_count(s.r -> 'cached_input_tokens', c_max_tokens),
                        0) AS cached_input_tokens,
               coalesce(public.ai_usage_batch_count(s.r -> 'reasoning_tokens', c_max_tokens),
                        0) AS reasoning_tokens,
               s.r ? 'cost' AS has_cost,
               public.ai_usage_batch_count(s.r -> 'latency_ms', c_max_latency) AS latency_ms,
               public.ai_usage_batch_count(s.r -> 'time_to_first_token_ms', c_max_latency)
                   AS time_to_first_token_ms,
               public.ai_usage_batch_is_text(s.r -> 'status', 16) AS status_ok,
               coalesce(s.r ->> 'status', 'success') AS status,
               public.ai_usage_batch_is_text(s.r -> 'error_code', 100) AS error_code_ok,
               coalesce(s.r ->> 'error_code', '') AS error_code,
               public.ai_usage_batch_count(s.r -> 'agent_session_id', c_max_id)
                   AS agent_session_id,
               public.ai_usage_batch_count(s.r -> 'agent_message_id', c_max_id)
                   AS agent_message_id,
               CASE WHEN s.r ? 'reserved_tokens' THEN 'reserved_tokens'
                    WHEN s.r ? 'reserved_cost' THEN 'reserved_cost' END AS old_reserved_field,
               public.ai_usage_batch_count(s.r -> 'reservation_id', c_max_id) AS reservation_id,
               CASE WHEN s.r -> 'metadata' IS NULL OR jsonb_typeof(s.r -> 'metadata') = 'null'
                    THEN '{}'::jsonb
                    WHEN jsonb_typeof(s.r -> 'metadata') = 'object'
                         AND length((s.r -> 'metadata')::text) <= c_max_metadata
                    THEN s.r -> 'metadata' END AS metadata
          FROM src s
    ), resolved AS (
        SELECT p.*,
               pv.id AS pv_id, pv.slug AS pv_slug, pv.is_active AS pv_active,
               m.id AS m_id, m.name AS m_name, m.provider_id AS m_provider_id,
               m.is_active AS m_active, m.matches AS m_matches,
               m.input_price_per_million, m.output_price_per_million,
               m.cached_input_price_per_million,
               mp.slug AS m_provider_slug, mp.is_active AS m_provider_active,
               am.user_id AS message_owner, am.session_id AS message_session,
               se.user_id AS session_owner,
               rv.user_id AS rv_owner, rv.tokens AS rv_tokens, rv.cost AS rv_cost,
               rv.period_start AS rv_period_start, rv.expires_at AS rv_expires_at,
               rv.settled_at AS rv_settled_at, rv.released_at AS rv_released_at,
               rv.request_id AS rv_request_id,
               EXISTS (
                   SELECT 1 FROM public.ai_usage_request_keys k
                    WHERE p.reservation_id > 0 AND p.request_id_ok
                      AND k.user_id = p_user_id AND k.request_id = p.request_id
               ) AS already_recorded,
               p.model_id IS NULL AND p.model_ok AND EXISTS (
                   SELECT 1 FROM public.ai_models other WHERE other.name = p.model_name
               ) AS model_name_known
          FROM parsed p
          LEFT JOIN LATERAL (
                SELECT pr.id, pr.slug, pr.is_active
                  FROM public.ai_providers pr
                 WHERE (p.provider_id > 0 AND pr.id = p.provider_id)
                    OR (p.provider_id IS NULL AND p.provider_ok AND pr.slug = p.provider_slug)
          ) pv ON true
          LEFT JOIN LATERAL (
                SELECT mo.id, mo.name, mo.provider_id, mo.is_active,
                       mo.input_price_per_million, mo.output_price_per_million,
                       mo.cached_input_price_per_million, count(*) OVER () AS matches
                  FROM public.ai_models mo
                 WHERE (p.model_id > 0 AND mo.id = p.model_id)
                    OR (p.model_id IS NULL AND p.model_ok AND mo.name = p.model_name
                        AND (pv.id IS NULL OR mo.provider_id = pv.id))
                 LIMIT 1
          ) m ON true
          LEFT JOIN public.ai_providers mp ON mp.id = m.provider_id
          -- Looked up by primary key, record by record (LIMIT 1 keeps the planner from
          -- joining the whole table instead).
          LEFT JOIN LATERAL (
                SELECT a.user_id, a.session_id
                  FROM public.agent_messages a
                 WHERE p.agent_message_id > 0 AND a.id = p.agent_message_id
                 LIMIT 1
          ) am ON true
          LEFT JOIN LATERAL (
                SELECT s.user_id
                  FROM public.agent_sessions s
                 WHERE s.id = CASE WHEN p.agent_session_id > 0 THEN p.agent_session_id
                                   ELSE am.session_id END
                 LIMIT 1
          ) se ON true
          LEFT JOIN LATERAL (
                SELECT q.user_id, q.tokens, q.cost, q.period_start, q.expires_at, q.settled_at,
                       q.released_at, q.request_id
                  FROM public.quota_reservations q
                 WHERE p.reservation_id > 0 AND q.id = p.reservation_id
                 LIMIT 1
          ) rv ON true
    ), checked AS (
        SELECT r.*,
               CASE
                 WHEN NOT r.is_object THEN
                   ARRAY['invalid', NULL, 'each record must be a JSON object']
                 WHEN NOT r.request_id_ok THEN
                   ARRAY['invalid', 'request_id',
                         'request_id is required: a string of 1 to 100 characters']
                 WHEN r.provider_id = -1 OR r.provider_id = 0 THEN
                   ARRAY['invalid', 'provider_id', 'provider_id must be a positive whole number']
                 WHEN NOT r.provider_ok THEN
                   ARRAY['invalid', 'provider', 'provider must be a slug of at most 40 characters']
                 WHEN r.model_id = -1 OR r.model_id = 0 THEN
                   ARRAY['invalid', 'model_id', 'model_id must be a positive whole number']
                 WHEN NOT r.model_ok THEN
                   ARRAY['invalid', 'model', 'model must be a name of at most 100 characters']
                 WHEN r.provider_id IS NOT NULL AND r.pv_id IS NULL THEN
                   ARRAY['invalid', 'provider_id', format('unknown provider %s', r.provider_id)]
                 WHEN r.provider_slug IS NOT NULL AND r.pv_id IS NULL THEN
                   ARRAY['invalid', 'provider', format('unknown provider %L', r.provider_slug)]
                 WHEN r.provider_slug IS NOT NULL AND r.pv_slug <> r.provider_slug THEN
                   ARRAY['invalid', 'provider',
                         format('provider %L is not provider %s', r.provider_slug, r.pv_id)]
                 WHEN r.pv_id IS NOT NULL AND NOT r.pv_active THEN
                   ARRAY['invalid', CASE WHEN r.provider_id IS NULL THEN 'provider'
                                         ELSE 'provider_id' END,
                         format('provider %L is not available', r.pv_slug)]
                 WHEN r.model_id IS NULL AND r.model_name IS NULL THEN
                   ARRAY['invalid', 'model', 'model (a name) or model_id is required']
                 WHEN r.model_id IS NOT NULL AND r.m_id IS NULL THEN
                   ARRAY['invalid', 'model_id', format('unknown model %s', r.model_id)]
                 WHEN r.m_id IS NULL AND r.pv_id IS NOT NULL AND r.model_name_known THEN
                   ARRAY['invalid', CASE WHEN r.provider_id IS NULL THEN 'provider'
                                         ELSE 'provider_id' END,
                         format('model %L is not a model of provider %L', r.model_name,
                                r.pv_slug)]
                 WHEN r.m_id IS NULL AND r.pv_id IS NOT NULL THEN
                   ARRAY['invalid', 'model', format('unknown model %L of provider %L',
                                                    r.model_name, r.pv_slug)]
                 WHEN r.m_id IS NULL THEN
                   ARRAY['invalid', 'model', format('unknown model %L', r.model_name)]
                 WHEN r.m_matches > 1 THEN
                   ARRAY['invalid', 'provider',
                         format('several providers have a model %L: name the provider',
                                r.model_name)]
                 WHEN r.model_name IS NOT NULL AND r.m_name <> r.model_name THEN
                   ARRAY['invalid', 'model',
                         format('model %L is not model %s', r.model_name, r.m_id)]
                 WHEN NOT r.m_active OR NOT r.m_provider_active THEN
                   ARRAY['invalid', CASE WHEN r.model_id IS NULL THEN 'model' ELSE 'model_id' END,
                         format('model %L is not available', r.m_name)]
                 WHEN r.pv_id IS NOT NULL AND r.pv_id <> r.m_provider_id THEN
                   ARRAY['invalid', CASE WHEN r.provider_id IS NULL THEN 'provider'
                                         ELSE 'provider_id' END,
                         format('model %L is not a model of provider %L', r.m_name, r.pv_slug)]
                 WHEN r.has_cost THEN
                   ARRAY['invalid', 'cost',
                         'cost is not accepted: the server prices every request from the catalog']
                 WHEN r.old_reserved_field IS NOT NULL THEN
                   ARRAY['invalid', r.old_reserved_field,
                         format('%s is no longer accepted: pass reservation_id, the id '
                                'POST /quota/consume answered', r.old_reserved_field)]
                 WHEN r.reservation_id = -1 OR r.reservation_id = 0 THEN
                   ARRAY['invalid', 'reservation_id',
                         'reservation_id must be a positive whole number']
                 WHEN r.input_tokens IS NULL OR r.input_tokens < 0 THEN
                   ARRAY['invalid', 'input_tokens', format(
                         'input_tokens is required: a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.output_tokens IS NULL OR r.output_tokens < 0 THEN
                   ARRAY['invalid', 'output_tokens', format(
                         'output_tokens is required: a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.cached_input_tokens < 0 THEN
                   ARRAY['invalid', 'cached_input_tokens', format(
                         'cached_input_tokens must be a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.reasoning_tokens < 0 THEN
                   ARRAY['invalid', 'reasoning_tokens', format(
                         'reasoning_tokens must be a whole number from 0 to %s', c_max_tokens)]
                 WHEN r.cached_input_tokens > r.input_tokens THEN
                   ARRAY['invalid', 'cached_input_tokens', format(
                         'cached input tokens (%s) cannot exceed input tokens (%s)',
                         r.cached_input_tokens, r.input_tokens)]
                 WHEN r.reasoning_tokens > r.output_tokens THEN
                   ARRAY['invalid', 'reasoning_tokens', format(
                         'reasoning tokens (%s) cannot exceed output tokens (%s)',
                         r.reasoning_tokens, r.output_tokens)]
                 WHEN r.latency_ms < 0 THEN
                   ARRAY['invalid', 'latency_ms',
                         format('latency_ms must be a whole number from 0 to %s', c_max_latency)]
                 WHEN r.time_to_first_token_ms < 0 THEN
                   ARRAY['invalid', 'time_to_first_token_ms', format(
                         'time_to_first_token_ms must be a whole number from 0 to %s',
                         c_max_latency)]
                 WHEN NOT r.status_ok OR r.status NOT IN
                        ('success', 'error', 'timeout', 'cancelled', 'rejected') THEN
                   ARRAY['invalid', 'status',
                         'status must be one of success, error, timeout, cancelled, rejected']
                 WHEN NOT r.error_code_ok THEN
                   ARRAY['invalid', 'error_code', 'error_code has at most 100 characters']
                 WHEN r.metadata IS NULL THEN
                   ARRAY['invalid', 'metadata', format(
                         'metadata must be a JSON object of at most %s characters',
                         c_max_metadata)]
                 WHEN r.agent_message_id = -1 OR r.agent_message_id = 0 THEN
                   ARRAY['invalid', 'agent_message_id',
                         'agent_message_id must be a positive whole number']
                 WHEN r.agent_session_id = -1 OR r.agent_session_id = 0 THEN
                   ARRAY['invalid', 'agent_session_id',
                         'agent_session_id must be a positive whole number']
                 WHEN r.agent_message_id IS NOT NULL
                      AND r.message_owner IS DISTINCT FROM p_user_id THEN
                   ARRAY['not_found', 'agent_message_id',
                         format('agent message %s not found', r.agent_message_id)]
                 WHEN r.agent_session_id IS NOT NULL
                      AND r.session_owner IS DISTINCT FROM p_user_id THEN
                   ARRAY['not_found', 'agent_session_id',
                         format('agent session %s not found', r.agent_session_id)]
                 WHEN r.agent_message_id IS NOT NULL AND r.agent_session_id IS NOT NULL
                      AND r.message_session <> r.agent_session_id THEN
                   ARRAY['invalid', 'agent_message_id',
                         format('agent message %s is not a message of agent session %s',
                                r.agent_message_id, r.agent_session_id)]
                 -- A record already recorded is answered as a duplicate (or a conflict) later,
                 -- whatever became of its reservation since.
                 WHEN r.reservation_id IS NULL OR r.already_recorded THEN NULL
                 WHEN r.rv_owner IS DISTINCT FROM p_user_id THEN
                   ARRAY['not_found', 'reservation_id',
                         format('reservation %s not found', r.reservation_id)]
                 WHEN r.rv_settled_at IS NOT NULL THEN
                   ARRAY['conflict', 'reservation_id',
                         format('reservation %s was already settled by request_id %L',
                                r.reservation_id, r.rv_request_id)]
                 WHEN r.rv_released_at IS NOT NULL OR r.rv_expires_at <= v_now THEN
                   ARRAY['conflict', 'reservation_id',
                         format('reservation %s expired at %s and its hold was given back: '
                                'record the usage without reservation_id', r.reservation_id,
                                r.rv_expires_at)]
               END AS refusal
          FROM resolved r
    ), once AS (  -- a reservation settles one request: the first record that names it
        SELECT c.*,
               coalesce(c.refusal, CASE
                 WHEN c.refusal IS NULL AND c.reservation_id IS NOT NULL
                      AND first_value(c.request_id) OVER (
                              PARTITION BY c.refusal IS NULL, c.reservation_id ORDER BY c.idx)
                          IS DISTINCT FROM c.request_id THEN
                   ARRAY['conflict', 'reservation_id',
                         format('reservation %s is named by an earlier record of this batch',
                                c.reservation_id)]
               END) AS final_refusal
          FROM checked c
    ), valid AS (
        SELECT c.*,
               c.final_refusal IS NULL
                 AND row_number() OVER (PARTITION BY c.final_refusal IS NULL, c.request_id
                                        ORDER BY c.idx) = 1 AS is_candidate,
               CASE WHEN c.final_refusal IS NULL THEN
                    round(((c.input_tokens - c.cached_input_tokens)::numeric
                              * c.input_price_per_million
                           + c.cached_input_tokens::numeric * c.cached_input_price_per_million
                           + c.output_tokens::numeric * c.output_price_per_million) / 1000000,
                          6) END AS cost,
               -- What the reservation holds in the quota's current period (a hold of an
               -- earlier period went with that period's counters).
               CASE WHEN c.final_refusal IS NULL AND c.reservation_id IS NOT NULL
                         AND NOT c.already_recorded
                         AND c.rv_period_start = v_quota.period_start
                    THEN c.rv_tokens ELSE 0 END AS held_tokens,
               CASE WHEN c.final_refusal IS NULL AND c.reservation_id IS NOT NULL
                         AND NOT c.already_recorded
                         AND c.rv_period_start = v_quota.period_start
                    THEN c.rv_cost ELSE 0 END AS held_cost
          FROM once c
    )
    SELECT array_agg(ROW(
               v.idx,
               CASE WHEN v.request_id_ok THEN v.request_id END,
               v.m_provider_id,
               v.m_id,
               v.input_tokens::integer,
               v.output_tokens::integer,
               v.cached_input_tokens::integer,
               v.reasoning_tokens::integer,
               v.input_tokens + v.output_tokens,
               v.cost,
               v.input_price_per_million,
               v.output_price_per_million,
               v.cached_input_price_per_million,
               v.latency_ms::integer,
               v.time_to_first_token_ms::integer,
               v.status,
               v.error_code,
               coalesce(CASE WHEN v.agent_session_id > 0 THEN v.agent_session_id END,
                        v.message_session),
               CASE WHEN v.agent_message_id > 0 THEN v.agent_message_id END,
               v.reservation_id,
               v.held_tokens,
               v.held_cost,
               v.metadata,
               v.is_candidate,
               v.final_refusal[1],
               v.final_refusal[2],
               v.final_refusal[3]
           )::public.ai_usage_batch_row ORDER BY v.idx)
      INTO v_rows
      FROM valid v;

    IF EXISTS (SELECT 1 FROM unnest(v_rows) c WHERE c.is_candidate) THEN
        -- (2. The user's lock was taken in step 0.)

        -- 3. Key rows, sorted: an existing (user, request_id) or agent message is skipped.
        WITH inserted AS (
            INSERT INTO public.ai_usage_request_keys AS k
                   (usage_id, user_id, request_id, agent_message_id, created_at)
            SELECT nextval('public.ai_usage_requests_id_seq'), p_user_id, c.request_id,
                   c.agent_message_id, v_now
              FROM unnest(v_rows) c
             WHERE c.is_candidate
             ORDER BY c.request_id COLLATE "C"
            ON CONFLICT DO NOTHING
            RETURNING k.request_id, k.usage_id
        )
        SELECT array_agg(i.request_id), array_agg(i.usage_id)
          INTO v_new_request_ids, v_new_usage_ids
          FROM inserted i;

        IF v_new_request_ids IS NOT NULL THEN
            -- 4. The usage rows of the new keys, in agent session order, and the reservations
            -- they settle.
            UPDATE public.quota_reservations AS r
               SET settled_at = v_now, usage_id = n.usage_id, request_id = c.request_id
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids, v_new_usage_ids) AS n(request_id, usage_id)
                ON n.request_id = c.request_id
             WHERE c.is_candidate AND c.reservation_id IS NOT NULL AND r.id = c.reservation_id;

            INSERT INTO public.ai_usage_requests
                   (id, created_at, user_id, provider_id, model_id, agent_session_id,
                    agent_message_id, reservation_id, request_id, input_tokens, output_tokens,
                    cached_input_tokens, reasoning_tokens, total_tokens, cost,
                    input_price_per_million, output_price_per_million,
                    cached_input_price_per_million, latency_ms, time_to_first_token_ms, status,
                    error_code, error_message, metadata)
            SELECT n.usage_id, v_now, p_user_id, c.provider_id, c.model_id, c.agent_session_id,
                   c.agent_message_id, c.reservation_id, c.request_id, c.input_tokens, c.output_tokens,
                   c.cached_input_tokens, c.reasoning_tokens, c.total_tokens, c.cost,
                   c.input_price_per_million, c.output_price_per_million,
                   c.cached_input_price_per_million, c.latency_ms, c.time_to_first_token_ms,
                   c.status, c.error_code, '', c.metadata
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids, v_new_usage_ids) AS n(request_id, usage_id)
                ON n.request_id = c.request_id
             WHERE c.is_candidate
             ORDER BY c.agent_session_id NULLS FIRST, c.request_id COLLATE "C";

            -- 5. The roll-ups, aggregated and in conflict-key order.
            INSERT INTO public.ai_usage_daily AS d
                   (user_id, usage_date, provider_id, model_id, request_count, success_count,
                    error_count, input_tokens, output_tokens, cached_input_tokens,
                    reasoning_tokens, total_tokens, cost, latency_ms_sum, latency_count,
                    updated_at)
            SELECT p_user_id, (v_now AT TIME ZONE 'UTC')::date, c.provider_id, c.model_id,
                   count(*), count(*) FILTER (WHERE c.status = 'success'),
                   count(*) FILTER (WHERE c.status <> 'success'), sum(c.input_tokens),
                   sum(c.output_tokens), sum(c.cached_input_tokens), sum(c.reasoning_tokens),
                   sum(c.total_tokens), sum(c.cost), coalesce(sum(c.latency_ms), 0),
                   count(c.latency_ms), now()
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids) AS n(request_id) ON n.request_id = c.request_id
             WHERE c.is_candidate
             GROUP BY c.provider_id, c.model_id
             ORDER BY c.provider_id, c.model_id
            ON CONFLICT (user_id, usage_date, provider_id, model_id) DO UPDATE
               SET request_count = d.request_count + excluded.request_count,
                   success_count = d.success_count + excluded.success_count,
                   error_count = d.error_count + excluded.error_count,
                   input_tokens = d.input_tokens + excluded.input_tokens,
                   output_tokens = d.output_tokens + excluded.output_tokens,
                   cached_input_tokens = d.cached_input_tokens + excluded.cached_input_tokens,
                   reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
                   total_tokens = d.total_tokens + excluded.total_tokens,
                   cost = d.cost + excluded.cost,
                   latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
                   latency_count = d.latency_count + excluded.latency_count,
                   updated_at = excluded.updated_at;

            INSERT INTO public.ai_usage_monthly AS mo
                   (user_id, year, month, request_count, success_count, error_count,
                    input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
                    total_tokens, cost, latency_ms_sum, latency_count, updated_at)
            SELECT p_user_id, extract(year FROM v_now AT TIME ZONE 'UTC')::smallint,
                   extract(month FROM v_now AT TIME ZONE 'UTC')::smallint,
                   count(*), count(*) FILTER (WHERE c.status = 'success'),
                   count(*) FILTER (WHERE c.status <> 'success'), sum(c.input_tokens),
                   sum(c.output_tokens), sum(c.cached_input_tokens), sum(c.reasoning_tokens),
                   sum(c.total_tokens), sum(c.cost), coalesce(sum(c.latency_ms), 0),
                   count(c.latency_ms), now()
              FROM unnest(v_rows) c
              JOIN unnest(v_new_request_ids) AS n(request_id) ON n.request_id = c.request_id
             WHERE c.is_candidate
            ON CONFLICT (user_id, year, month) DO UPDATE
               SET request_count = mo.request_count + excluded.request_count,
                   success_count = mo.success_count + excluded.success_count,
                   error_count = mo.error_count + excluded.error_count,
                   input_tokens = mo.input_tokens + excluded.input_tokens,
                   output_tokens = mo.output_tokens + excluded.output_tokens,
                   cached_input_tokens = mo.cached_input_tokens + excluded.cached_input_tokens,
                   reasoning_tokens = mo.reasoning_tokens + excluded.reasoning_tokens,
                   total_tokens = mo.total_tokens + excluded.total_tokens,
                   cost = mo.cost + excluded.cost,
                   latency_ms_sum = mo.latency_ms_sum + excluded.latency_ms_sum,
                   latency_count = mo.latency_count + excluded.latency_count,
                   updated_at = excluded.updated_at;

            -- 6. The quota, booked once (its row is locked since step 0): the actual amounts
            -- minus what the settled reservations held.
            IF v_quota.user_id IS NOT NULL THEN
                SELECT sum(c.total_tokens), sum(c.cost), sum(c.held_tokens), sum(c.held_cost)
                  INTO v_tokens, v_cost, v_held_tokens, v_held_cost
                  FROM unnest(v_rows) c
                  JOIN unnest(v_new_request_ids) AS n(request_id) ON n.request_id = c.request_id
                 WHERE c.is_candidate;
                IF NOT (v_now >= v_quota.period_start AND v_now < v_quota.period_end) THEN
                    v_tokens := 0;
                    v_cost := 0;
                END IF;
                UPDATE public.user_quotas AS q
                   SET tokens_used = greatest(0, q.tokens_used + v_tokens - v_held_tokens),
                       cost_used = greatest(0, q.cost_used + v_cost - v_held_cost),
                       updated_at = now()
                 WHERE q.user_id = p_user_id
                RETURNING q.* INTO v_quota;
                IF public.quota_may_alert(v_quota) THEN
                    PERFORM public.raise_quota_alerts(p_user_id);
                END IF;
            END IF;
        END IF;
    END IF;

    -- 7. The answer per record. A new statement: duplicates are compared with what is stored
    -- now, including rows that concurrent transactions committed while we waited for them.
    RETURN QUERY
    WITH answered AS (
        SELECT c.idx, c.request_id, c.refusal_code, c.refusal_field, c.refusal_message,
               c.total_tokens, c.cost,
               n.usage_id AS new_id,
               s.id AS stored_id, s.total_tokens AS stored_tokens, s.cost AS stored_cost,
               (s.provider_id = c.provider_id
                AND s.model_id = c.model_id
                AND s.input_tokens = c.input_tokens
                AND s.output_tokens = c.output_tokens
                AND s.cached_input_tokens = c.cached_input_tokens
                AND s.reasoning_tokens = c.reasoning_tokens
                AND s.status = c.status
                AND s.error_code = c.error_code
                AND s.latency_ms IS NOT DISTINCT FROM c.latency_ms
                AND s.time_to_first_token_ms IS NOT DISTINCT FROM c.time_to_first_token_ms
                AND s.agent_session_id IS NOT DISTINCT FROM c.agent_session_id
                AND s.agent_message_id IS NOT DISTINCT FROM c.agent_message_id
                AND s.metadata = c.metadata
                AND s.reservation_id IS NOT DISTINCT FROM c.reservation_id) AS same_content
          FROM unnest(v_rows) c
          LEFT JOIN unnest(v_new_request_ids, v_new_usage_ids) AS n(request_id, usage_id)
                 ON c.is_candidate AND n.request_id = c.request_id
          LEFT JOIN public.ai_usage_request_keys k
                 ON c.refusal_code IS NULL AND k.user_id = p_user_id
                    AND k.request_id = c.request_id
          LEFT JOIN public.ai_usage_requests s
                 ON s.id = k.usage_id AND s.created_at = k.created_at
    )
    SELECT a.idx,
           a.request_id,
           CASE WHEN a.refusal_code IS NOT NULL THEN 'refused'
                WHEN a.new_id IS NOT NULL THEN 'recorded'
                WHEN a.same_content THEN 'duplicate'
                ELSE 'refused' END,
           CASE WHEN a.refusal_code IS NOT NULL THEN NULL
                WHEN a.new_id IS NOT NULL THEN a.new_id
                WHEN a.same_content THEN a.stored_id END,
           CASE WHEN a.refusal_code IS NOT NULL THEN NULL
                WHEN a.new_id IS NOT NULL THEN a.total_tokens
                WHEN a.same_content THEN a.stored_tokens END,
           CASE WHEN a.refusal_code IS NOT NULL THEN NULL
                WHEN a.new_id IS NOT NULL THEN a.cost
                WHEN a.same_content THEN a.stored_cost END,
           CASE WHEN a.refusal_code IS NOT NULL THEN a.refusal_code
                WHEN a.new_id IS NOT NULL OR a.same_content THEN NULL
                ELSE 'conflict' END,
           CASE WHEN a.refusal_code IS NOT NULL THEN a.refusal_field
                WHEN a.new_id IS NOT NULL OR a.same_content THEN NULL
                WHEN a.stored_id IS NULL THEN 'agent_message_id'
                ELSE 'request_id' END,
           CASE WHEN a.refusal_code IS NOT NULL THEN a.refusal_message
                WHEN a.new_id IS NOT NULL OR a.same_content THEN NULL
                WHEN a.stored_id IS NULL THEN
                    format('the agent message of request_id %L already has a usage record',
                           a.request_id)
                ELSE format('request_id %L was already recorded with different content',
                            a.request_id) END
      FROM answered a
     ORDER BY a.idx;
END
$$;
REVOKE ALL ON FUNCTION public.record_ai_usage_batch(bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.record_ai_usage_batch(bigint, jsonb) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.refresh_usage_daily_totals",
            sha256="7f93b4a5742bd2b61e5cad1e8fa551ffce3e3f802b2c99024235efc4755e49b2",
            adopted=True,
            sql=r"""-- refresh_usage_daily_totals(p_days): see above. Returns the rows written. Service context or
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
""",
        ),
        DefineSQL(
            name="public.refresh_usage_today_totals",
            sha256="b6d748ad73571108104f1976a2570c46a14699cb2cb25afffed4e96378bdc42d",
            adopted=True,
            sql=r"""-- Today's all-users totals, as of the last minute (bench/README.md, issue 10): the staff
-- dashboard read today's ai_usage_daily rows of every user live, the one part of its pages that
-- still grew with the number of users. refresh_usage_today_totals() (the job worker, every
-- minute) writes today's rows of ai_usage_daily_totals and today's active users, and stamps
-- them (ai_usage_totals_state.today_date, today_as_of, today_users); the pages read them while
-- they are fresh (two minutes) and say "as of", else read today live as before.
--
-- Today's rows are not "covered" (covered_before stays at today): refresh_usage_daily_totals
-- recomputes them in full once the day is over, and record_ai_usage adds a past request only to
-- covered days; a request placed in today is in the next minute's refresh.
-- refresh_usage_today_totals(): see above. Returns the rows written. Service context or an
-- admin; serialized with refresh_usage_daily_totals (the same advisory lock).
CREATE OR REPLACE FUNCTION public.refresh_usage_today_totals()
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_rows integer;
    v_users integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'refresh_usage_today_totals: staff or the service context only'
            USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.ai_usage_totals_state s WHERE s.id = 1) THEN
        PERFORM public.refresh_usage_daily_totals(NULL);  -- the days before, first
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('refresh_usage_daily_totals', 0));

    v_rows := public.usage_totals_recompute(v_today, v_today + 1);
    SELECT count(DISTINCT d.user_id) INTO v_users
      FROM public.ai_usage_daily d WHERE d.usage_date = v_today;

    UPDATE public.ai_usage_totals_state AS s
       SET today_date = v_today, today_as_of = now(), today_users = v_users
     WHERE s.id = 1;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_usage_today_totals() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_usage_today_totals() TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.usage_daily_totals_add",
            sha256="189f3ced3754b791095c7cc4844d18c3d643061ff1fa8a1d5e060541ac493f7f",
            adopted=True,
            sql=r"""-- usage_daily_totals_add(...): add one request to its covered day's total (internal to
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
""",
        ),
        DefineSQL(
            name="public.usage_totals_recompute",
            sha256="690cad8323f79861766131f8f8adfe195d645ab1c455f107cbcac09c90552479",
            adopted=True,
            sql=r"""-- usage_totals_recompute(from, before): the all-users totals of the days [from, before)
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
""",
        ),
    ]
