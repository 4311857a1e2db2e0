-- resume_subscription(user): undo a scheduled downgrade or cancellation before it takes effect.
-- Returns false when nothing was scheduled. Audited (subscription_change_undone).
CREATE OR REPLACE FUNCTION public.resume_subscription(p_user_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    UPDATE public.user_subscriptions AS s
       SET cancel_at_period_end = false, scheduled_tier_id = NULL, canceled_at = NULL,
           updated_at = now()
     WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due')
       AND s.cancel_at_period_end
    RETURNING s.id INTO v_id;
    IF v_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM public.write_audit_log(
        p_event_type => 'subscription_change_undone',
        p_user_id => p_user_id,
        p_target_type => 'user_subscription',
        p_target_id => v_id::text);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.resume_subscription(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.resume_subscription(bigint) TO witchcraft_app;
