DROP FUNCTION IF EXISTS public.monitoring_slow_statements(double precision, integer);
DROP FUNCTION IF EXISTS public.monitoring_statements_state();
DROP FUNCTION IF EXISTS public.monitoring_statements_schema();
DROP FUNCTION IF EXISTS public.monitoring_request_windows(timestamptz);
-- The extension made by the forward migration lives in this schema (one made elsewhere stays).
DROP SCHEMA IF EXISTS monitoring CASCADE;
DROP INDEX IF EXISTS public.ai_usage_requests_created_status;
