-- archive_usage_partitions(p_after_months, p_max_partitions): move at most p_max_partitions
-- monthly partitions of public.ai_usage_requests whose whole month ended p_after_months months
-- ago or earlier (UTC: with 12, on 2026-12-07 every month up to 2025-11), oldest first, to the
-- archive. Returns {"archived": n, "waiting": m}: m old enough partitions still live (the bound,
-- or a lock not obtained: the next run takes them). Service context only.
--
-- DETACH PARTITION ... CONCURRENTLY cannot run inside a transaction block, and daily maintenance
-- is one transaction: the plain DETACH takes an ACCESS EXCLUSIVE lock on ai_usage_requests for
-- a moment (no data is copied). As ensure_usage_partitions, it waits at most lock_timeout for
-- it (2 s here, so requests are never queued long behind it), three times with a pause between,
-- then leaves the partition for the next run instead of failing the maintenance.
-- The DEFAULT partition is never archived (rows wait there only when their month's partition is
-- missing; ensure_usage_partitions(months_ahead, months_back) places them).
CREATE OR REPLACE FUNCTION public.archive_usage_partitions(
    p_after_months integer, p_max_partitions integer
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_before date;
    v_part record;
    v_archived integer := 0;
    v_waiting integer := 0;
    v_done boolean;
    v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'archive_usage_partitions: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_after_months IS NULL OR p_after_months NOT BETWEEN 1 AND 120 THEN
        RAISE EXCEPTION 'archive_usage_partitions: months must be between 1 and 120, not %',
            coalesce(p_after_months::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_max_partitions IS NULL OR p_max_partitions NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'archive_usage_partitions: partitions per run must be between 0 and 120, not %',
            coalesce(p_max_partitions::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_before := (pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')
                 - pg_catalog.make_interval(months => p_after_months))::date;

    FOR v_part IN
        SELECT m.relname, m.first_day
          FROM (SELECT c.relname,
                       pg_catalog.to_date(substring(c.relname FROM 'y([0-9]{4}m[0-9]{2})$'),
                                          'YYYY"m"MM') AS first_day
                  FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'public.ai_usage_requests'::regclass
                   AND c.relname ~ '^ai_usage_requests_y[0-9]{4}m[0-9]{2}$') m
         WHERE (m.first_day + interval '1 month')::date <= v_before
         ORDER BY m.first_day
    LOOP
        IF v_archived >= p_max_partitions
           OR pg_catalog.to_regclass('archive.' || pg_catalog.quote_ident(v_part.relname)) IS NOT NULL
        THEN
            v_waiting := v_waiting + 1;
            CONTINUE;
        END IF;
        v_done := false;
        FOR v_attempt IN 1..3 LOOP
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
                EXECUTE pg_catalog.format(
                    'ALTER TABLE public.ai_usage_requests DETACH PARTITION public.%I',
                    v_part.relname);
                EXECUTE pg_catalog.format('ALTER TABLE public.%I SET SCHEMA archive',
                                          v_part.relname);
                EXECUTE pg_catalog.format(
                    'ALTER TABLE archive.ai_usage_requests ATTACH PARTITION archive.%I'
                    ' FOR VALUES FROM (%L) TO (%L)', v_part.relname,
                    v_part.first_day::timestamp AT TIME ZONE 'UTC',
                    (v_part.first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
                -- As every partition: queried directly it would skip the parent's policies.
                EXECUTE pg_catalog.format('ALTER TABLE archive.%I ENABLE ROW LEVEL SECURITY',
                                          v_part.relname);
                EXECUTE pg_catalog.format('ALTER TABLE archive.%I FORCE ROW LEVEL SECURITY',
                                          v_part.relname);
                EXECUTE pg_catalog.format('REVOKE ALL ON archive.%I FROM PUBLIC, witchcraft_app',
                                          v_part.relname);
                v_done := true;
            EXCEPTION WHEN lock_not_available THEN
                PERFORM pg_catalog.pg_sleep(v_attempt);
            END;
            EXIT WHEN v_done;
        END LOOP;
        IF v_done THEN
            v_archived := v_archived + 1;
        ELSE
            v_waiting := v_waiting + 1;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
    RETURN pg_catalog.jsonb_build_object('archived', v_archived, 'waiting', v_waiting);
END
$$;
REVOKE ALL ON FUNCTION public.archive_usage_partitions(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.archive_usage_partitions(integer, integer) TO witchcraft_app;
