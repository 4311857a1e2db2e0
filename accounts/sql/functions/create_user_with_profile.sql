-- create_user_with_profile: the seed's registration flow, in one transaction.
--   users -> user_profiles -> user_quotas (free tier, current UTC month) -> a free subscription
--   -> audit_logs 'user_created'.
-- Runs before anyone is known (sign-up), so it is SECURITY DEFINER and open to anonymous callers;
-- it can only ever create a plain account (never staff). The email is normalised (trimmed,
-- lower-case); a taken email raises unique_violation (23505) on constraint users_email_key,
-- which callers recognise. p_password_hash is a Django password hash ('algorithm$...'), or an
-- unusable password ('!...').
CREATE OR REPLACE FUNCTION public.create_user_with_profile(
    p_email text, p_password_hash text, p_full_name text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_email text := lower(btrim(coalesce(p_email, '')));
    v_user_id bigint;
    v_tier public.subscription_tiers%ROWTYPE;
    v_period_start timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    v_period_end timestamptz;
BEGIN
    IF v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(v_email) > 254 THEN
        RAISE EXCEPTION 'invalid email address' USING ERRCODE = '22023';
    END IF;
    IF p_password_hash IS NULL OR (p_password_hash !~ '^[a-z0-9_]+\$' AND left(p_password_hash, 1) <> '!') THEN
        RAISE EXCEPTION 'p_password_hash must be a password hash, never a raw password'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_tier FROM public.subscription_tiers WHERE slug = 'free' AND is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the free tier is missing from subscription_tiers' USING ERRCODE = 'P0002';
    END IF;
    -- Month arithmetic in UTC, whatever the session's time zone.
    v_period_end := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')
                    AT TIME ZONE 'UTC';

    INSERT INTO public.users (email, password, full_name, is_active, is_staff, is_superuser,
                              date_joined)
    VALUES (v_email, p_password_hash, left(btrim(coalesce(p_full_name, '')), 200), true, false,
            false, now())
    RETURNING id INTO v_user_id;

    INSERT INTO public.user_profiles (user_id, display_name, timezone, locale, preferences,
                                      avatar_url, company, created_at, updated_at)
    VALUES (v_user_id, left(btrim(coalesce(p_full_name, '')), 120), 'UTC', 'en', '{}', '', '',
            now(), now());

    INSERT INTO public.user_quotas (user_id, tokens_limit, tokens_used, cost_limit, cost_used,
                                    period_start, period_end, updated_at)
    VALUES (v_user_id, v_tier.monthly_token_limit, 0, v_tier.monthly_cost_limit, 0,
            v_period_start, v_period_end, now());

    INSERT INTO public.user_subscriptions (user_id, tier_id, status, billing_cycle,
                                           current_period_start, current_period_end,
                                           cancel_at_period_end, payment_provider,
                                           provider_customer_id, provider_subscription_id,
                                           created_at, updated_at)
    VALUES (v_user_id, v_tier.id, 'active', 'monthly', v_period_start, v_period_end, false,
            '', '', '', now(), now());

    INSERT INTO public.audit_logs (created_at, user_id, actor_id, event_type, severity, ip,
                                   user_agent, request_id, target_type, target_id, details)
    VALUES (now(), v_user_id, coalesce(auth.actor_id(), v_user_id), 'user_created', 'info',
            nullif(current_setting('app.ip', true), '')::inet, '',
            coalesce(current_setting('app.request_id', true), ''), 'user', v_user_id::text,
            jsonb_build_object('tier', v_tier.slug));
    RETURN v_user_id;
END
$$;
REVOKE ALL ON FUNCTION public.create_user_with_profile(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.create_user_with_profile(text, text, text) TO witchcraft_app;
