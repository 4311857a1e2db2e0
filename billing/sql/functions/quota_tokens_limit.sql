-- quota_tokens_limit(quota): the token limit in force now. The plan's (tokens_limit), or, while
-- a staff raise runs (raised_until in the future), the larger of the plan's and the raised one;
-- after raised_until the plan's again, with no job to run. A plain SQL expression (no SET
-- clause: it is inlined into its callers, which pin their search_path); one comparison with
-- now() on the fast path of check_and_consume_quota.
CREATE OR REPLACE FUNCTION public.quota_tokens_limit(p_quota public.user_quotas)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN ($1).raised_until > now()
                THEN greatest(($1).tokens_limit, coalesce(($1).raised_tokens_limit, 0))
                ELSE ($1).tokens_limit END
$$;
REVOKE ALL ON FUNCTION public.quota_tokens_limit(user_quotas) FROM PUBLIC;
