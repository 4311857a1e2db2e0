-- ensure_usage_partitions(months_ahead, months_back): create the monthly partitions from
-- months_back months ago to months_ahead months ahead (UTC) that do not exist yet, moving rows
-- of those months out of the DEFAULT partition first. Returns how many it created. Idempotent.
CREATE OR REPLACE FUNCTION public.ensure_usage_partitions(months_ahead integer, months_back integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    first_day date;
    lower_bound timestamptz;
    upper_bound timestamptz;
    partition_name text;
    parent_rls boolean;
    parent_force_rls boolean;
    created integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead NOT BETWEEN 0 AND 120
       OR months_back IS NULL OR months_back NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'ensure_usage_partitions: months_ahead and months_back must be between 0 and 120'
            USING ERRCODE = '22023';
    END IF;
    -- Attaching waits for readers of the table: give up rather than queue everyone behind us.
    PERFORM set_config('lock_timeout', '5s', true);
    SELECT relrowsecurity, relforcerowsecurity INTO parent_rls, parent_force_rls
      FROM pg_class WHERE oid = 'public.ai_usage_requests'::regclass;

    FOR step IN -months_back..months_ahead LOOP
        first_day := (this_month + make_interval(months => step))::date;
        partition_name := format('ai_usage_requests_y%sm%s',
                                 to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
        CONTINUE WHEN to_regclass('public.' || partition_name) IS NOT NULL;

        lower_bound := first_day::timestamp AT TIME ZONE 'UTC';
        upper_bound := (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE public.%I (LIKE public.ai_usage_requests'
                       ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition_name);
        -- Rows of this month that waited in DEFAULT would make the ATTACH fail: move them.
        EXECUTE format('WITH moved AS (DELETE FROM public.ai_usage_requests_default'
                       ' WHERE created_at >= %L AND created_at < %L RETURNING *)'
                       ' INSERT INTO public.%I SELECT * FROM moved',
                       lower_bound, upper_bound, partition_name);
        EXECUTE format('ALTER TABLE public.ai_usage_requests ATTACH PARTITION public.%I'
                       ' FOR VALUES FROM (%L) TO (%L)', partition_name, lower_bound, upper_bound);
        -- Querying a partition directly skips the parent's policies: protect it the same way.
        IF parent_rls THEN
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', partition_name);
        END IF;
        IF parent_force_rls THEN
            EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', partition_name);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION public.ensure_usage_partitions(integer, integer) FROM PUBLIC;
