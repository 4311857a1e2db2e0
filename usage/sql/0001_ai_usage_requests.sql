-- ai_usage_requests: one row per AI request, range-partitioned by month (UTC) on created_at.
--
-- Token convention: input_tokens includes cached_input_tokens, output_tokens includes
-- reasoning_tokens, total_tokens = input_tokens + output_tokens.
--
-- Uniqueness that a partitioned table cannot hold (its unique indexes must contain created_at)
-- lives in ai_usage_request_keys: every usage row must match its key row exactly (user,
-- request id, id and created_at), so a (user_id, request_id) pair is counted once whichever
-- month it lands in, an id is unique across partitions, and an agent message has at most one
-- usage row.

CREATE SEQUENCE public.ai_usage_requests_id_seq AS bigint;

CREATE TABLE public.ai_usage_requests (
    id bigint NOT NULL DEFAULT nextval('public.ai_usage_requests_id_seq'),
    created_at timestamptz NOT NULL DEFAULT now(),
    user_id bigint NOT NULL REFERENCES public.users (id),
    provider_id integer NOT NULL REFERENCES public.ai_providers (id),
    model_id integer NOT NULL REFERENCES public.ai_models (id),
    agent_session_id bigint REFERENCES public.agent_sessions (id) ON DELETE SET NULL,
    agent_message_id bigint,
    request_id varchar(100) NOT NULL,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    cached_input_tokens integer NOT NULL DEFAULT 0,
    reasoning_tokens integer NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    cost numeric(12, 6) NOT NULL DEFAULT 0,
    input_price_per_million numeric(12, 6) NOT NULL DEFAULT 0,
    output_price_per_million numeric(12, 6) NOT NULL DEFAULT 0,
    cached_input_price_per_million numeric(12, 6) NOT NULL DEFAULT 0,
    latency_ms integer,
    time_to_first_token_ms integer,
    status varchar(16) NOT NULL DEFAULT 'success',
    error_code varchar(100) NOT NULL DEFAULT '',
    error_message text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT ai_usage_requests_pkey PRIMARY KEY (id, created_at),
    CONSTRAINT ai_usage_requests_key_fk FOREIGN KEY (user_id, request_id, id, created_at)
        REFERENCES public.ai_usage_request_keys (user_id, request_id, usage_id, created_at),
    CONSTRAINT ai_usage_requests_message_fk FOREIGN KEY (id, agent_message_id)
        REFERENCES public.ai_usage_request_keys (usage_id, agent_message_id) ON UPDATE CASCADE,
    CONSTRAINT ai_usage_requests_tokens_non_negative CHECK (
        input_tokens >= 0 AND output_tokens >= 0 AND cached_input_tokens >= 0
        AND reasoning_tokens >= 0),
    CONSTRAINT ai_usage_requests_cached_within_input CHECK (cached_input_tokens <= input_tokens),
    CONSTRAINT ai_usage_requests_reasoning_within_output CHECK (reasoning_tokens <= output_tokens),
    CONSTRAINT ai_usage_requests_total_tokens CHECK (total_tokens = input_tokens::bigint + output_tokens),
    CONSTRAINT ai_usage_requests_money_non_negative CHECK (
        cost >= 0 AND input_price_per_million >= 0 AND output_price_per_million >= 0
        AND cached_input_price_per_million >= 0),
    CONSTRAINT ai_usage_requests_latency_non_negative CHECK (
        (latency_ms IS NULL OR latency_ms >= 0)
        AND (time_to_first_token_ms IS NULL OR time_to_first_token_ms >= 0)),
    CONSTRAINT ai_usage_requests_status_valid CHECK (
        status IN ('success', 'error', 'timeout', 'cancelled', 'rejected')),
    CONSTRAINT ai_usage_requests_request_id_not_empty CHECK (request_id <> ''),
    CONSTRAINT ai_usage_requests_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
) PARTITION BY RANGE (created_at);

ALTER SEQUENCE public.ai_usage_requests_id_seq OWNED BY public.ai_usage_requests.id;

-- A user's recent activity (and the column row-level security filters on).
CREATE INDEX idx_ai_usage_user_recent ON public.ai_usage_requests (user_id, created_at DESC);
-- The usage of one agent session.
CREATE INDEX ai_usage_requests_session ON public.ai_usage_requests (agent_session_id)
    WHERE agent_session_id IS NOT NULL;

-- No row is ever refused: what no monthly partition takes waits here.
CREATE TABLE public.ai_usage_requests_default PARTITION OF public.ai_usage_requests DEFAULT;

-- Provider comparison over a period, read from the daily roll-up (the name is longer than
-- Django's 30-character limit for index names, so it is made here).
CREATE INDEX idx_ai_usage_provider_comparison ON public.ai_usage_daily (usage_date, provider_id)
    INCLUDE (request_count, error_count, total_tokens, cost, latency_ms_sum, latency_count);

-- ensure_usage_partitions(months_ahead, months_back): create the monthly partitions from
-- months_back months ago to months_ahead months ahead (UTC) that do not exist yet, moving rows
-- of those months out of the DEFAULT partition first. Returns how many it created. Idempotent.
CREATE FUNCTION public.ensure_usage_partitions(months_ahead integer, months_back integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public
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

SELECT public.ensure_usage_partitions(3, 1);
