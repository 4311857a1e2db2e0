"""New definitions of functions/public.check_and_consume_quota, functions/public.get_remaining_quota, functions/public.quota_cost_limit, functions/public.quota_tokens_limit, functions/public.raise_quota_limit, policies/public.quota_limit_raises.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0022_set_user_active"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0016_quota_limit_raises"),
        ("usage", "0016_error_message"),
        ("witchcraft", "0006_maintenance_steps"),
    ]

    operations = [
        DefineSQL(
            name="public.check_and_consume_quota",
            sha256="3e4a879e7b03489ef2bbf7f8ef2a2c6275904e54f5874cdb9b06b292b9e2efcd",
            previous="billing.0013_functions",
            sql=r"""CREATE OR REPLACE FUNCTION public.check_and_consume_quota(
    p_user_id bigint, p_tokens bigint, p_cost numeric, p_ttl_seconds integer DEFAULT 900
) RETURNS TABLE(allowed boolean, tokens_remaining bigint, cost_remaining numeric, reason text,
                reservation_id bigint, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cost numeric := round(p_cost, 6);
    v_quota public.user_quotas%ROWTYPE;
    v_reserved boolean;
    v_changed boolean;
    v_reservation public.quota_reservations%ROWTYPE;
BEGIN
    PERFORM auth.require_record_for(p_user_id);
    IF p_tokens IS NULL OR p_tokens < 0 THEN
        RAISE EXCEPTION 'tokens must be a non-negative number, got %', p_tokens
            USING ERRCODE = '22023';
    END IF;
    IF p_cost IS NULL OR p_cost < 0 THEN
        RAISE EXCEPTION 'cost must be a non-negative amount, got %', p_cost
            USING ERRCODE = '22023';
    END IF;
    IF p_ttl_seconds IS NULL OR p_ttl_seconds < 1 OR p_ttl_seconds > 86400 THEN
        RAISE EXCEPTION 'a reservation lives between 1 and 86400 seconds, got %', p_ttl_seconds
            USING ERRCODE = '22023';
    END IF;

    FOR attempt IN 1..2 LOOP
        UPDATE public.user_quotas AS q
           SET tokens_used = q.tokens_used + p_tokens,
               cost_used = q.cost_used + v_cost,
               updated_at = now()
         WHERE q.user_id = p_user_id
           AND q.period_end > now()
           AND p_tokens <= public.quota_tokens_limit(q) - q.tokens_used
           AND v_cost <= public.quota_cost_limit(q) - q.cost_used
           AND NOT public.quota_has_expired_holds(p_user_id)
        RETURNING q.* INTO v_quota;
        v_reserved := FOUND;
        EXIT WHEN v_reserved OR attempt = 2;
        PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
        EXIT WHEN NOT FOUND;
        v_changed := public.quota_reservations_release_expired(p_user_id) > 0;
        v_changed := public.roll_quota_forward(p_user_id) OR v_changed;
        EXIT WHEN NOT v_changed;
    END LOOP;

    IF v_reserved THEN
        INSERT INTO public.quota_reservations AS r
               (user_id, tokens, cost, period_start, created_at, expires_at)
        VALUES (p_user_id, p_tokens, v_cost, v_quota.period_start, now(),
                now() + make_interval(secs => p_ttl_seconds))
        RETURNING r.* INTO v_reservation;
        IF public.quota_may_alert(v_quota) THEN
            PERFORM public.raise_quota_alerts(p_user_id);
        END IF;
        RETURN QUERY SELECT true,
                            greatest(public.quota_tokens_limit(v_quota) - v_quota.tokens_used,
                                     0)::bigint,
                            greatest(public.quota_cost_limit(v_quota) - v_quota.cost_used,
                                     0)::numeric,
                            NULL::text, v_reservation.id, v_reservation.expires_at;
        RETURN;
    END IF;

    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 0::bigint, 0::numeric, 'no_quota'::text, NULL::bigint,
                            NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY SELECT false,
                        greatest(public.quota_tokens_limit(v_quota) - v_quota.tokens_used,
                                 0)::bigint,
                        greatest(public.quota_cost_limit(v_quota) - v_quota.cost_used,
                                 0)::numeric,
                        CASE WHEN p_tokens > public.quota_tokens_limit(v_quota) - v_quota.tokens_used
                             THEN 'tokens_exceeded' ELSE 'cost_exceeded' END,
                        NULL::bigint, NULL::timestamptz;
END
$$;
REVOKE ALL ON FUNCTION public.check_and_consume_quota(bigint, bigint, numeric, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_and_consume_quota(
    bigint, bigint, numeric, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.get_remaining_quota",
            sha256="7fe28bd8b74bcac152881c8239e5d1dec7a7890c2719400f84e482f42acd2163",
            previous="billing.0013_functions",
            sql=r"""-- get_remaining_quota(user): limits, used, remaining (never negative) and percent used (rounded
-- to 2 places; NULL when the limit is 0) for tokens and cost, with the period. No row when the
-- user has no quota.
-- A read, never a write (STABLE, callable from any page): when the stored period has ended it
-- reports what roll_quota_forward would make of it, i.e. the current UTC month with nothing
-- used and the current plan's limits. The row itself rolls on the next consumption, usage record
-- or monthly maintenance. The limits are those in force now: a staff raise until its end
-- (quota_tokens_limit / quota_cost_limit), the plan's otherwise.
CREATE OR REPLACE FUNCTION public.get_remaining_quota(p_user_id bigint)
RETURNS TABLE(
    tokens_limit bigint,
    tokens_used bigint,
    tokens_remaining bigint,
    tokens_percent_used numeric,
    cost_limit numeric,
    cost_used numeric,
    cost_remaining numeric,
    cost_percent_used numeric,
    period_start timestamptz,
    period_end timestamptz
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    RETURN QUERY
    WITH stored AS (
        SELECT public.quota_tokens_limit(q) AS t_limit, q.tokens_used AS t_used,
               public.quota_cost_limit(q) AS c_limit, q.cost_used AS c_used,
               q.period_start AS p_start, q.period_end AS p_end,
               CASE WHEN q.raised_until > now() THEN q.raised_tokens_limit END AS t_raised,
               CASE WHEN q.raised_until > now() THEN q.raised_cost_limit END AS c_raised
          FROM public.user_quotas q
         WHERE q.user_id = p_user_id
    ), effective AS (
        SELECT s.t_limit, s.t_used, s.c_limit, s.c_used, s.p_start, s.p_end
          FROM stored s
         WHERE s.p_end > now()
        UNION ALL
        SELECT greatest(coalesce(l.tokens_limit, s.t_limit), s.t_raised), 0::bigint,
               greatest(coalesce(l.cost_limit, s.c_limit), s.c_raised),
               0::numeric, b.period_start, b.period_end
          FROM stored s
         CROSS JOIN public.quota_period_bounds(now()) b
          LEFT JOIN public.quota_tier_limits(p_user_id) l ON true
         WHERE s.p_end <= now()
    )
    SELECT e.t_limit,
           e.t_used,
           greatest(e.t_limit - e.t_used, 0)::bigint,
           round(e.t_used * 100.0 / nullif(e.t_limit, 0), 2),
           e.c_limit,
           e.c_used,
           greatest(e.c_limit - e.c_used, 0)::numeric,
           round(e.c_used * 100.0 / nullif(e.c_limit, 0), 2),
           e.p_start,
           e.p_end
      FROM effective e;
END
$$;
REVOKE ALL ON FUNCTION public.get_remaining_quota(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_remaining_quota(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.quota_cost_limit",
            sha256="46d17a9c49f8c117f4f58330534b6167276e1d6f6f1277fb2ed8d79b26967cb5",
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.quota_cost_limit(user_quotas)",
            ],
            sql=r"""-- quota_cost_limit(quota): the cost limit in force now, as quota_tokens_limit is for tokens:
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
""",
        ),
        DefineSQL(
            name="public.quota_tokens_limit",
            sha256="c1f5924f9137faa7dceecb969f99141c630962d8983ceea55dbd92aef50d5b8e",
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.quota_tokens_limit(user_quotas)",
            ],
            sql=r"""-- quota_tokens_limit(quota): the token limit in force now. The plan's (tokens_limit), or, while
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
""",
        ),
        DefineSQL(
            name="public.raise_quota_limit",
            sha256="3e7436291eccb8bf9b83b814b222092e75fd50f74f994b517c50919f8537319f",
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.raise_quota_limit(bigint,bigint,numeric,timestamp with time zone)",
            ],
            sql=r"""-- raise_quota_limit(user, tokens limit, cost limit, until): a staff member raises the user's
-- token and / or cost limit (NULL: that one not raised) until a moment. Stored on the quota row
-- (raised_tokens_limit, raised_cost_limit, raised_until), where check_and_consume_quota and
-- get_remaining_quota read it through quota_tokens_limit / quota_cost_limit: honoured until
-- `until`, the plan's limits afterwards, with no job to run. A new raise replaces the one
-- running. Each raise is a row of quota_limit_raises (who, when, effective limits before and
-- after, until) and a quota_limit_raised audit row (the staff member as actor). Open alerts the
-- new limits no longer justify are resolved.
-- Refused (nothing written):
--   42501  the caller is not staff holding billing.change_userquota (nor the service context)
--   22023  neither limit given; a limit not above the plan's or above the maximum (tokens
--          10^15, cost 999999.999999 = numeric(12,6)); `until` not in the future or after the
--          end of the next quota period (the UTC month after this one)
--   WC404  the user has no quota
-- Returns the id of the quota_limit_raises row.
CREATE OR REPLACE FUNCTION public.raise_quota_limit(
    p_user_id bigint, p_tokens_limit bigint, p_cost_limit numeric, p_until timestamptz
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_quota public.user_quotas%ROWTYPE;
    v_cost numeric := round(p_cost_limit, 6);
    v_max_until timestamptz;
    v_id bigint;
BEGIN
    IF NOT (auth.is_service() OR auth.has_perm('billing', 'change_userquota')) THEN
        RAISE EXCEPTION 'only staff allowed to change quotas may raise a limit'
            USING ERRCODE = '42501';
    END IF;
    IF p_tokens_limit IS NULL AND p_cost_limit IS NULL THEN
        RAISE EXCEPTION 'Raise the token limit, the cost limit or both.' USING ERRCODE = '22023';
    END IF;
    IF p_until IS NULL OR p_until <= now() OR p_until = 'infinity'::timestamptz THEN
        RAISE EXCEPTION 'The end of a raise must be in the future.' USING ERRCODE = '22023';
    END IF;
    SELECT b.period_end + interval '1 month' INTO v_max_until
      FROM public.quota_period_bounds(now()) b;
    IF p_until > v_max_until THEN
        RAISE EXCEPTION 'A raise ends by the end of the next quota period (% UTC).',
            to_char(v_max_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') USING ERRCODE = '22023';
    END IF;
    IF p_tokens_limit IS NOT NULL AND (p_tokens_limit < 0 OR p_tokens_limit > 1000000000000000)
    THEN
        RAISE EXCEPTION 'A token limit is between 0 and 10^15.' USING ERRCODE = '22023';
    END IF;
    IF p_cost_limit IS NOT NULL AND (v_cost < 0 OR v_cost > 999999.999999) THEN
        RAISE EXCEPTION 'A cost limit is between $0 and $999,999.999999.' USING ERRCODE = '22023';
    END IF;

    SELECT q.* INTO v_quota FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'The user has no quota.' USING ERRCODE = 'WC404';
    END IF;
    IF p_tokens_limit IS NOT NULL AND p_tokens_limit <= v_quota.tokens_limit THEN
        RAISE EXCEPTION 'The raised token limit must be above the plan''s (%).',
            v_quota.tokens_limit USING ERRCODE = '22023';
    END IF;
    IF p_cost_limit IS NOT NULL AND v_cost <= v_quota.cost_limit THEN
        RAISE EXCEPTION 'The raised cost limit must be above the plan''s ($%).',
            v_quota.cost_limit USING ERRCODE = '22023';
    END IF;

    INSERT INTO public.quota_limit_raises AS r
           (user_id, raised_by_id, created_at, tokens_limit_from, tokens_limit_to,
            cost_limit_from, cost_limit_to, raised_until)
    VALUES (p_user_id, auth.user_id(), now(), public.quota_tokens_limit(v_quota), p_tokens_limit,
            public.quota_cost_limit(v_quota), v_cost, p_until)
    RETURNING r.id INTO v_id;
    UPDATE public.user_quotas AS q
       SET raised_tokens_limit = p_tokens_limit,
           raised_cost_limit = v_cost,
           raised_until = p_until,
           updated_at = now()
     WHERE q.user_id = p_user_id;
    PERFORM public.write_audit_log(
        p_event_type => 'quota_limit_raised', p_user_id => p_user_id,
        p_details => jsonb_build_object(
            'tokens_from', public.quota_tokens_limit(v_quota), 'tokens_to', p_tokens_limit,
            'cost_from', public.quota_cost_limit(v_quota), 'cost_to', v_cost,
            'until', p_until),
        p_target_type => 'user_quota', p_target_id => p_user_id::text);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION public.raise_quota_limit(bigint, bigint, numeric, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.raise_quota_limit(bigint, bigint, numeric, timestamptz)
    TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.quota_limit_raises",
            sha256="61e46c28d50aafbff330236d9f1623a3b28a01c3c3fc8863ba34f0b7866de65f",
            kind="policies",
            drop_on_reverse=[
                "DROP POLICY IF EXISTS quota_limit_raises_select_admin ON public.quota_limit_raises",
                "DROP POLICY IF EXISTS quota_limit_raises_select_own ON public.quota_limit_raises",
            ],
            sql=r"""-- Row-level security of public.quota_limit_raises: the policies below are all of its policies.
-- Written only by raise_quota_limit (SECURITY DEFINER); staff read every raise, a user theirs.
ALTER TABLE public.quota_limit_raises ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quota_limit_raises FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS quota_limit_raises_select_admin ON public.quota_limit_raises;
CREATE POLICY quota_limit_raises_select_admin ON public.quota_limit_raises FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

DROP POLICY IF EXISTS quota_limit_raises_select_own ON public.quota_limit_raises;
CREATE POLICY quota_limit_raises_select_own ON public.quota_limit_raises FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
""",
        ),
    ]
