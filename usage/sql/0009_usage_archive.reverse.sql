-- Undoes 0009_usage_archive.sql; the migration then re-creates the second daily_maintenance()
-- from 0005_usage_daily_totals.sql. Archived partitions go back to public.ai_usage_requests
-- (they are never dropped).
DROP FUNCTION IF EXISTS public.daily_maintenance(integer, integer);
DROP FUNCTION IF EXISTS public.archive_usage_partitions(integer, integer);
DO $$
DECLARE
    v_part record;
BEGIN
    FOR v_part IN
        SELECT c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'archive.ai_usage_requests'::regclass
    LOOP
        EXECUTE format('ALTER TABLE archive.ai_usage_requests DETACH PARTITION archive.%I',
                       v_part.relname);
        EXECUTE format('ALTER TABLE archive.%I SET SCHEMA public', v_part.relname);
        EXECUTE format('ALTER TABLE public.ai_usage_requests ATTACH PARTITION public.%I %s',
                       v_part.relname, v_part.bound);
    END LOOP;
END
$$;
DROP TABLE IF EXISTS archive.ai_usage_requests;
DROP SCHEMA IF EXISTS archive;
