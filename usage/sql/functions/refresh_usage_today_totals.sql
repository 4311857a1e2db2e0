-- Today's all-users totals, as of the last minute (bench/README.md, issue 10): the staff
-- dashboard read today's ai_usage_daily rows of every user live, the one part of its pages that
-- still grew with the number of users. refresh_usage_today_totals() (the job worker, every
-- minute) writes today's rows of ai_usage_daily_totals and today's active users, and stamps
-- them (ai_usage_totals_state.today_date, today_as_of, today_users); the pages read them while
-- they are fresh (two minutes) and say "as of", else read today live as before.
--
-- Today's rows are not "covered" (covered_before stays at today): refresh_usage_daily_totals
-- recomputes them in full once the day is over, and record_ai_usage adds a past request only to
-- covered days; a request placed in today is in the next minute's refresh.
-- refresh_usage_today_totals(): see above. Returns the rows written. Service context or an
-- admin; serialized with refresh_usage_daily_totals (the same advisory lock).
CREATE OR REPLACE FUNCTION public.refresh_usage_today_totals()
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_rows integer;
    v_users integer;
BEGIN
    IF NOT (auth.is_service() OR auth.is_admin()) THEN
        RAISE EXCEPTION 'refresh_usage_today_totals: staff or the service context only'
            USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.ai_usage_totals_state s WHERE s.id = 1) THEN
        PERFORM public.refresh_usage_daily_totals(NULL);  -- the days before, first
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('refresh_usage_daily_totals', 0));

    v_rows := public.usage_totals_recompute(v_today, v_today + 1);
    SELECT count(DISTINCT d.user_id) INTO v_users
      FROM public.ai_usage_daily d WHERE d.usage_date = v_today;

    UPDATE public.ai_usage_totals_state AS s
       SET today_date = v_today, today_as_of = now(), today_users = v_users
     WHERE s.id = 1;
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION public.refresh_usage_today_totals() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.refresh_usage_today_totals() TO witchcraft_app;
