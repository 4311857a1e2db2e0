DROP FUNCTION IF EXISTS public.ensure_usage_partitions(integer, integer);
DROP INDEX IF EXISTS public.idx_ai_usage_provider_comparison;
DROP TABLE IF EXISTS public.ai_usage_requests CASCADE;
