-- billing_periods_close(): the billing step of monthly_maintenance. For every user whose quota
-- period or current subscription period has ended, one at a time in user order (the quota row
-- locked first, as every quota flow does):
--   1. the subscription: canceled at period end (to the scheduled tier, or free), expired after
--      a 7-day past_due grace (to free), or renewed by whole cycles until its period covers now;
--      the quota's limits follow a plan change at once;
--   2. the quota rolled to this month by roll_quota_forward, which resolves the open alerts of
--      earlier periods (counted around it).
-- Returns {"quotas_rolled", "alerts_resolved", "subscriptions_canceled",
-- "subscriptions_downgraded", "subscriptions_expired", "subscriptions_renewed"}: the keys are
-- monthly_maintenance's own, so the orchestrator returns them as they are.
-- Idempotent: after a run no period it looks at has ended, so a second run counts 0 everywhere.
-- Service context only; not granted to the runtime role (monthly_maintenance reaches it as the
-- owner).
CREATE OR REPLACE FUNCTION public.billing_periods_close() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := now();
    v_month record;
    v_free_tier integer;
    v_user bigint;
    v_sub public.user_subscriptions%ROWTYPE;
    v_start timestamptz;
    v_end timestamptz;
    v_step interval;
    v_open_before bigint;
    v_open_after bigint;
    v_rolled integer := 0;
    v_alerts integer := 0;
    v_canceled integer := 0;
    v_expired integer := 0;
    v_renewed integer := 0;
    v_downgraded integer := 0;
    v_next_tier integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'billing_periods_close: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    SELECT b.period_start, b.period_end INTO v_month FROM public.quota_period_bounds(v_now) b;
    SELECT t.id INTO v_free_tier FROM public.subscription_tiers t WHERE t.slug = 'free';

    FOR v_user IN
        SELECT q.user_id FROM public.user_quotas q WHERE q.period_end <= v_now
        UNION
        SELECT s.user_id FROM public.user_subscriptions s
         WHERE s.status IN ('trialing', 'active', 'past_due') AND s.current_period_end <= v_now
        ORDER BY 1
    LOOP
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = v_user FOR UPDATE;

        -- 1. The subscription (at most one current: user_subscriptions_one_current).
        SELECT s.* INTO v_sub FROM public.user_subscriptions s
         WHERE s.user_id = v_user AND s.status IN ('trialing', 'active', 'past_due')
           AND s.current_period_end <= v_now
           FOR UPDATE;
        IF FOUND THEN
            IF v_sub.cancel_at_period_end
               OR (v_sub.status = 'past_due' AND v_sub.current_period_end + interval '7 days' <= v_now)
            THEN
                IF v_free_tier IS NULL THEN
                    RAISE EXCEPTION 'billing_periods_close: the free tier is missing'
                        USING ERRCODE = '55000';
                END IF;
                -- The old row leaves the current states first: one current row per user.
                -- canceled_at keeps the moment the user asked to cancel, when known. A
                -- downgrade to a paid tier keeps the provider's subscription: its references
                -- move to the new row (they are unique).
                -- (An unpaid subscription goes to free, whatever was scheduled.)
                v_next_tier := CASE WHEN v_sub.cancel_at_period_end AND v_sub.status <> 'past_due'
                                    THEN coalesce(v_sub.scheduled_tier_id, v_free_tier)
                                    ELSE v_free_tier END;
                UPDATE public.user_subscriptions s
                   SET status = CASE WHEN v_sub.cancel_at_period_end THEN 'canceled'
                                     ELSE 'expired' END,
                       canceled_at = CASE WHEN v_sub.cancel_at_period_end
                                          THEN coalesce(s.canceled_at, v_now)
                                          ELSE s.canceled_at END,
                       provider_subscription_id = CASE WHEN v_next_tier <> v_free_tier THEN ''
                                                       ELSE s.provider_subscription_id END,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                IF v_next_tier = v_free_tier THEN
                    INSERT INTO public.user_subscriptions
                           (user_id, tier_id, status, billing_cycle, current_period_start,
                            current_period_end, cancel_at_period_end, canceled_at,
                            payment_provider, provider_customer_id, provider_subscription_id,
                            created_at, updated_at)
                    VALUES (v_user, v_free_tier, 'active', 'monthly', v_month.period_start,
                            v_month.period_end, false, NULL, '', '', '', v_now, v_now);
                ELSE
                    -- The next period of the same cycle, caught up to now.
                    v_step := CASE v_sub.billing_cycle WHEN 'yearly' THEN interval '1 year'
                                                       ELSE interval '1 month' END;
                    v_start := v_sub.current_period_start;
                    v_end := v_sub.current_period_end;
                    WHILE v_end <= v_now LOOP
                        v_start := v_end;
                        v_end := ((v_end AT TIME ZONE 'UTC') + v_step) AT TIME ZONE 'UTC';
                    END LOOP;
                    INSERT INTO public.user_subscriptions
                           (user_id, tier_id, status, billing_cycle, current_period_start,
                            current_period_end, cancel_at_period_end, canceled_at,
                            payment_provider, provider_customer_id, provider_subscription_id,
                            provider_event_at, created_at, updated_at)
                    VALUES (v_user, v_next_tier, 'active', v_sub.billing_cycle, v_start, v_end,
                            false, NULL, v_sub.payment_provider, v_sub.provider_customer_id,
                            v_sub.provider_subscription_id, v_sub.provider_event_at, v_now,
                            v_now);
                END IF;
                IF v_sub.cancel_at_period_end AND v_next_tier <> v_free_tier THEN
                    v_downgraded := v_downgraded + 1;
                ELSIF v_sub.cancel_at_period_end THEN
                    v_canceled := v_canceled + 1;
                ELSE
                    v_expired := v_expired + 1;
                END IF;
            ELSIF v_sub.status IN ('active', 'trialing') THEN
                -- Whole cycles, computed in UTC whatever the session's TimeZone, until the
                -- period covers now (a missed month does not leave it behind).
                v_step := CASE v_sub.billing_cycle WHEN 'yearly' THEN interval '1 year'
                                                   ELSE interval '1 month' END;
                v_start := v_sub.current_period_start;
                v_end := v_sub.current_period_end;
                WHILE v_end <= v_now LOOP
                    v_start := v_end;
                    v_end := ((v_end AT TIME ZONE 'UTC') + v_step) AT TIME ZONE 'UTC';
                END LOOP;
                UPDATE public.user_subscriptions s
                   SET status = 'active',
                       current_period_start = v_start,
                       current_period_end = v_end,
                       updated_at = v_now
                 WHERE s.id = v_sub.id;
                v_renewed := v_renewed + 1;
            END IF;
            -- past_due within its 7-day grace: left alone until paid or expired.
        END IF;

        -- The quota follows the plan at once, whether or not its period rolls below.
        IF v_next_tier IS NOT NULL THEN
            UPDATE public.user_quotas AS q
               SET tokens_limit = t.monthly_token_limit, cost_limit = t.monthly_cost_limit,
                   updated_at = v_now
              FROM public.subscription_tiers t
             WHERE t.id = v_next_tier AND q.user_id = v_user;
        END IF;
        v_next_tier := NULL;

        -- 2. The quota, with the limits of the plan decided above. roll_quota_forward resolves
        -- the open alerts of earlier periods; they are counted around it.
        SELECT count(*) INTO v_open_before FROM public.usage_alerts a
         WHERE a.user_id = v_user AND a.resolved_at IS NULL
           AND a.period_start < v_month.period_start;
        IF public.roll_quota_forward(v_user) THEN
            v_rolled := v_rolled + 1;
            SELECT count(*) INTO v_open_after FROM public.usage_alerts a
             WHERE a.user_id = v_user AND a.resolved_at IS NULL
               AND a.period_start < v_month.period_start;
            v_alerts := v_alerts + (v_open_before - v_open_after);
        END IF;
    END LOOP;

    RETURN jsonb_build_object(
        'quotas_rolled', v_rolled,
        'alerts_resolved', v_alerts,
        'subscriptions_canceled', v_canceled,
        'subscriptions_downgraded', v_downgraded,
        'subscriptions_expired', v_expired,
        'subscriptions_renewed', v_renewed);
END
$$;
REVOKE ALL ON FUNCTION public.billing_periods_close() FROM PUBLIC;
