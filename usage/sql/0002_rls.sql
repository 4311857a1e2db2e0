-- Row-level security for usage. The catalog is public (active rows), writable by admins; usage
-- rows and their roll-ups are readable by their owner and admins, written only by the SQL
-- functions of the AI request flow (SECURITY DEFINER).

-- ai_providers, ai_models: public catalog -----------------------------------------------------
ALTER TABLE ai_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_providers FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON ai_providers TO witchcraft_app;
GRANT USAGE ON SEQUENCE ai_providers_id_seq TO witchcraft_app;
CREATE POLICY ai_providers_select_active ON ai_providers FOR SELECT TO witchcraft_app
    USING (is_active OR (SELECT auth.is_admin()));
CREATE POLICY ai_providers_insert_admin ON ai_providers FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY ai_providers_update_admin ON ai_providers FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY ai_providers_delete_admin ON ai_providers FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

ALTER TABLE ai_models ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_models FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON ai_models TO witchcraft_app;
GRANT USAGE ON SEQUENCE ai_models_id_seq TO witchcraft_app;
CREATE POLICY ai_models_select_active ON ai_models FOR SELECT TO witchcraft_app
    USING (is_active OR (SELECT auth.is_admin()));
CREATE POLICY ai_models_insert_admin ON ai_models FOR INSERT TO witchcraft_app
    WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY ai_models_update_admin ON ai_models FOR UPDATE TO witchcraft_app
    USING ((SELECT auth.is_admin())) WITH CHECK ((SELECT auth.is_admin()));
CREATE POLICY ai_models_delete_admin ON ai_models FOR DELETE TO witchcraft_app
    USING ((SELECT auth.is_admin()));

-- usage rows, keys and roll-ups: read own / admin, no direct writes ---------------------------
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ai_usage_requests', 'ai_usage_request_keys', 'ai_usage_daily',
                             'ai_usage_monthly']
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT ON public.%I TO witchcraft_app', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO witchcraft_app'
                       ' USING (user_id = (SELECT auth.user_id()))', t || '_select_own', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO witchcraft_app'
                       ' USING ((SELECT auth.is_admin()))', t || '_select_admin', t);
    END LOOP;
END
$$;

-- Querying a partition directly skips the parent's policies: every partition, DEFAULT
-- included, gets RLS too (ensure_usage_partitions does the same for new ones).
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                 WHERE inhparent = 'public.ai_usage_requests'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);
        EXECUTE format('REVOKE ALL ON %s FROM witchcraft_app', part);
    END LOOP;
END
$$;

-- ensure_usage_partitions runs as its owner (partitions must belong to the table's owner).
ALTER FUNCTION public.ensure_usage_partitions(integer, integer) SECURITY DEFINER;
REVOKE ALL ON FUNCTION public.ensure_usage_partitions(integer, integer) FROM PUBLIC;
