CREATE OR REPLACE FUNCTION public.write_audit_log(
    p_event_type text,
    p_user_id bigint DEFAULT NULL,
    p_severity text DEFAULT 'info',
    p_details jsonb DEFAULT '{}',
    p_target_type text DEFAULT '',
    p_target_id text DEFAULT '',
    p_user_agent text DEFAULT ''
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    IF p_user_id IS NOT NULL AND NOT auth.may_act_for(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to write audit events for user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.audit_logs (created_at, user_id, actor_id, event_type, severity, ip,
                                   user_agent, request_id, target_type, target_id, details)
    VALUES (pg_catalog.now(), p_user_id, coalesce(auth.actor_id(), auth.user_id()), p_event_type,
            p_severity, nullif(pg_catalog.current_setting('app.ip', true), '')::inet,
            pg_catalog.left(coalesce(p_user_agent, ''), 500),
            coalesce(pg_catalog.current_setting('app.request_id', true), ''),
            coalesce(p_target_type, ''), coalesce(p_target_id, ''), coalesce(p_details, '{}'))
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION public.write_audit_log(
    text, bigint, text, jsonb, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.write_audit_log(
    text, bigint, text, jsonb, text, text, text) TO witchcraft_app;
