-- monthly_maintenance(): the seed's monthly job, in one transaction: a list of per-domain
-- steps, each in the live folder of the domain that owns it. Returns what it did:
--   subscriptions_canceled, subscriptions_downgraded, subscriptions_expired,
--   subscriptions_renewed, quotas_rolled, alerts_resolved
--       every ended subscription period closed and every ended quota rolled to this month, user
--       by user: billing's billing_periods_close (its keys are these)
--   report_rows
--       rows of usage_monthly_reports written for the previous calendar month: billing's
--       generate_monthly_report
-- Both steps refuse outside the service context too; billing_periods_close is not granted to
-- the runtime role: this function reaches it as the owner. One transaction: a step that fails
-- undoes the steps before it.
-- Idempotent: a second run closes and rolls nothing and finds the report right (every count 0).
CREATE OR REPLACE FUNCTION public.monthly_maintenance() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_periods jsonb;
    v_this_month date;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'monthly_maintenance: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    v_periods := public.billing_periods_close();

    -- The report of the calendar month (UTC) before the transaction's now(), the now() the
    -- step above closed periods at.
    SELECT (b.period_start AT TIME ZONE 'UTC')::date INTO v_this_month
      FROM public.quota_period_bounds(now()) b;
    RETURN v_periods || jsonb_build_object(
        'report_rows',
        public.generate_monthly_report((v_this_month - interval '1 month')::date));
END
$$;
REVOKE ALL ON FUNCTION public.monthly_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.monthly_maintenance() TO witchcraft_app;
