-- Undoes 0007_quota_reservations.sql; the migration then re-runs 0006_quota_fast_path.sql for
-- the third check_and_consume_quota.
DROP FUNCTION IF EXISTS public.check_and_consume_quota(bigint, bigint, numeric, integer);
DROP FUNCTION IF EXISTS public.release_expired_quota_reservations(integer);
DROP FUNCTION IF EXISTS public.quota_reservations_release_expired(bigint);
DROP FUNCTION IF EXISTS public.quota_has_expired_holds(bigint);
DROP FUNCTION IF EXISTS auth.require_record_for(bigint);
DROP FUNCTION IF EXISTS auth.may_record_for(bigint);

-- reset_user_quota as billing/sql/0004_admin_actions.sql left it.
CREATE OR REPLACE FUNCTION public.reset_user_quota(p_user_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'only staff may reset a quota' USING ERRCODE = '42501';
    END IF;
    UPDATE public.user_quotas AS q
       SET tokens_used = 0,
           cost_used = 0,
           tokens_limit = coalesce((SELECT l.tokens_limit
                                      FROM public.quota_tier_limits(p_user_id) l), q.tokens_limit),
           cost_limit = coalesce((SELECT l.cost_limit
                                    FROM public.quota_tier_limits(p_user_id) l), q.cost_limit),
           updated_at = now()
     WHERE q.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE public.usage_alerts AS a
       SET resolved_at = now()
     WHERE a.user_id = p_user_id AND a.resolved_at IS NULL;
    RETURN true;
END
$$;
