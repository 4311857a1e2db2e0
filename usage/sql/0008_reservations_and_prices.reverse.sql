-- Undoes 0008_reservations_and_prices.sql; the migration then re-runs
-- 0006_recording_fast_path.sql for the second record_ai_usage and record_ai_usage_batch.
DROP FUNCTION IF EXISTS public.record_ai_usage(
    bigint, integer, integer, integer, integer, text, integer, integer, integer, integer, text,
    text, bigint, bigint, bigint, jsonb, timestamptz, numeric);
DROP FUNCTION IF EXISTS public.record_ai_usage_batch(bigint, jsonb);
DROP TYPE IF EXISTS public.ai_usage_batch_row;
ALTER TABLE public.ai_usage_requests DROP COLUMN IF EXISTS reservation_id;

-- The batch row as usage/sql/0004_usage_batch.sql made it.
CREATE TYPE public.ai_usage_batch_row AS (
    idx integer,
    request_id text,
    provider_id integer,
    model_id integer,
    input_tokens integer,
    output_tokens integer,
    cached_input_tokens integer,
    reasoning_tokens integer,
    total_tokens bigint,
    given_cost numeric,
    cost numeric,
    input_price_per_million numeric,
    output_price_per_million numeric,
    cached_input_price_per_million numeric,
    latency_ms integer,
    time_to_first_token_ms integer,
    status text,
    error_code text,
    agent_session_id bigint,
    agent_message_id bigint,
    reserved_tokens bigint,
    reserved_cost numeric,
    metadata jsonb,
    is_candidate boolean,
    refusal_code text,
    refusal_field text,
    refusal_message text
);
