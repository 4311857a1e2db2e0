-- raise_quota_alerts(user), second version: as before (billing/sql/0002), and an alert of the
-- current period that was resolved (the plan grew, the quota was reset) fires again when the
-- quota reaches its threshold again: "once per period" means once per crossing that is still
-- true, not never again. A fired alert is to be mailed (notified_at NULL), and the transaction
-- is flagged (app.alerts_raised) so that the caller knows to send the mail after commit
-- without another query.
CREATE OR REPLACE FUNCTION public.raise_quota_alerts(p_user_id bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_created integer;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    INSERT INTO public.usage_alerts AS ua
           (user_id, alert_type, metric, threshold_percent, period_start, value_at_trigger,
            limit_at_trigger, triggered_at)
    SELECT q.user_id, t.alert_type, t.metric, t.threshold_percent, q.period_start, t.used,
           t.lim, now()
      FROM public.user_quotas q
     CROSS JOIN LATERAL (VALUES
            ('warning', 'tokens', 80, q.tokens_used::numeric, q.tokens_limit::numeric),
            ('exceeded', 'tokens', 100, q.tokens_used::numeric, q.tokens_limit::numeric),
            ('warning', 'cost', 80, q.cost_used, q.cost_limit),
            ('exceeded', 'cost', 100, q.cost_used, q.cost_limit)
           ) AS t(alert_type, metric, threshold_percent, used, lim)
     WHERE q.user_id = p_user_id
       AND t.lim > 0
       AND t.used * 100 >= t.lim * t.threshold_percent
    ON CONFLICT (user_id, alert_type, metric, period_start) DO UPDATE
       SET value_at_trigger = excluded.value_at_trigger,
           limit_at_trigger = excluded.limit_at_trigger,
           triggered_at = excluded.triggered_at,
           notified_at = NULL,
           acknowledged_at = NULL,
           acknowledged_by_id = NULL,
           resolved_at = NULL
     WHERE ua.resolved_at IS NOT NULL;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    IF v_created > 0 THEN
        PERFORM set_config('app.alerts_raised', 'true', true);
    END IF;
    RETURN v_created;
END
$$;
REVOKE ALL ON FUNCTION public.raise_quota_alerts(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.raise_quota_alerts(bigint) TO witchcraft_app;
