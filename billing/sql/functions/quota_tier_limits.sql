-- quota_tier_limits(user): the monthly limits of the user's current plan: the subscription in
-- state trialing / active / past_due (at most one, a unique index says so), else the free tier.
-- No row at all when neither exists (callers then keep the limits the quota has). Internal: run
-- by the SECURITY DEFINER functions below, not granted to the runtime role.
CREATE OR REPLACE FUNCTION public.quota_tier_limits(p_user_id bigint)
RETURNS TABLE(tokens_limit bigint, cost_limit numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT t.monthly_token_limit, t.monthly_cost_limit
      FROM (
            SELECT s.tier_id, 1 AS preference
              FROM public.user_subscriptions s
             WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due')
            UNION ALL
            SELECT f.id, 2 FROM public.subscription_tiers f WHERE f.slug = 'free'
           ) candidate
      JOIN public.subscription_tiers t ON t.id = candidate.tier_id
     ORDER BY candidate.preference
     LIMIT 1
$$;
REVOKE ALL ON FUNCTION public.quota_tier_limits(bigint) FROM PUBLIC;
