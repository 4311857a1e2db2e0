-- monitoring_statements_schema(): the schema pg_stat_statements is installed in, or NULL.
-- Internal: called by the two functions below as their owner, not granted to anyone.
CREATE OR REPLACE FUNCTION public.monitoring_statements_schema()
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT n.nspname::text
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements'
$$;
REVOKE ALL ON FUNCTION public.monitoring_statements_schema() FROM PUBLIC;
