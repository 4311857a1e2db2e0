-- Which API token sent each request (issue 19): ai_usage_requests.access_token_id, set by
-- record_ai_usage / record_ai_usage_batch from the bearer token that authenticated the call
-- (never from the client's body), NULL for what no token sent (web pages, service credentials,
-- imports, demo data). No foreign key, as reservation_id: daily maintenance deletes tokens
-- expired or revoked 30 days ago, and the usage row keeps the id (pages name it "deleted
-- token").
ALTER TABLE public.ai_usage_requests ADD COLUMN access_token_id bigint;
-- The archive must keep the same columns, or the next archived partition will not attach
-- (usage/sql/0009_usage_archive.sql); ADD COLUMN reaches the archived partitions too.
ALTER TABLE archive.ai_usage_requests ADD COLUMN access_token_id bigint;

-- Spend per token (this month, /me/tokens/ and the staff 360° page): a user's rows that a token
-- sent, from the month's first instant, grouped by token with their cost, read from the index
-- alone (deleted tokens' rows included). Partial: rows no token sent are not in it (their share
-- is the month's roll-up minus the tokens' sum).
CREATE INDEX ai_usage_requests_token_spend ON public.ai_usage_requests
    (user_id, created_at) INCLUDE (access_token_id, cost) WHERE access_token_id IS NOT NULL;

-- The staff request log (/dashboard/usage/requests/): one provider's (or one model's, whose
-- provider is known) requests of one day. provider_id = ? AND created_at in [day) bound the
-- scan to the day's rows of that provider in the month's partition; model_id is checked in the
-- index before any row is read. The day's rows are then sorted by cost (a top-N sort).
CREATE INDEX ai_usage_requests_provider_day ON public.ai_usage_requests
    (provider_id, created_at, model_id);
