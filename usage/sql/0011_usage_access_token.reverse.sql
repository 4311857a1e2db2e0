DROP INDEX IF EXISTS public.ai_usage_requests_provider_day;
DROP INDEX IF EXISTS public.ai_usage_requests_token_spend;
ALTER TABLE archive.ai_usage_requests DROP COLUMN access_token_id;
ALTER TABLE public.ai_usage_requests DROP COLUMN access_token_id;
