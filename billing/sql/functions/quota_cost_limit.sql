-- quota_cost_limit(quota): the cost limit in force now, as quota_tokens_limit is for tokens:
-- the plan's, or the larger of it and the staff raise until raised_until.
CREATE OR REPLACE FUNCTION public.quota_cost_limit(p_quota public.user_quotas)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN ($1).raised_until > now()
                THEN greatest(($1).cost_limit, coalesce(($1).raised_cost_limit, 0))
                ELSE ($1).cost_limit END
$$;
REVOKE ALL ON FUNCTION public.quota_cost_limit(user_quotas) FROM PUBLIC;
