-- audit_log_bucket(user): the batch bucket of a user's events (0 to 63; 0 without a user).
CREATE OR REPLACE FUNCTION public.audit_log_bucket(p_user_id bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (coalesce(p_user_id, 0) % 64)::smallint $$;
REVOKE ALL ON FUNCTION public.audit_log_bucket(bigint) FROM PUBLIC;
