-- resolve_outgrown_alerts(user): resolve the open alerts of the quota's current period that
-- its limits no longer justify (the plan grew, or a staff member reset it). Returns how many.
-- Internal: called by the SECURITY DEFINER functions below.
CREATE OR REPLACE FUNCTION public.resolve_outgrown_alerts(p_user_id bigint)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_resolved integer;
BEGIN
    UPDATE public.usage_alerts AS a
       SET resolved_at = now()
      FROM public.user_quotas q
     WHERE q.user_id = p_user_id
       AND a.user_id = p_user_id
       AND a.resolved_at IS NULL
       AND a.period_start = q.period_start
       AND NOT (
            CASE a.metric WHEN 'tokens' THEN q.tokens_limit::numeric ELSE q.cost_limit END > 0
            AND CASE a.metric WHEN 'tokens' THEN q.tokens_used::numeric ELSE q.cost_used END * 100
                >= CASE a.metric WHEN 'tokens' THEN q.tokens_limit::numeric ELSE q.cost_limit END
                   * a.threshold_percent);
    GET DIAGNOSTICS v_resolved = ROW_COUNT;
    RETURN v_resolved;
END
$$;
REVOKE ALL ON FUNCTION public.resolve_outgrown_alerts(bigint) FROM PUBLIC;
