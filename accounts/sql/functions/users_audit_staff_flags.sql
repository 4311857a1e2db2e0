-- The audit row: subject = the changed account, actor = whoever the context says (the
-- superuser; NULL for an operator outside any context), IP and request id from the context.
CREATE OR REPLACE FUNCTION public.users_audit_staff_flags() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM public.write_audit_log(
        p_event_type => 'staff_flag_changed',
        p_user_id => NEW.id,
        p_severity => 'warning',
        p_details => jsonb_build_object(
            'email', NEW.email,
            'old', jsonb_build_object('is_staff', OLD.is_staff,
                                      'is_superuser', OLD.is_superuser),
            'new', jsonb_build_object('is_staff', NEW.is_staff,
                                      'is_superuser', NEW.is_superuser)),
        p_target_type => 'user',
        p_target_id => NEW.id::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.users_audit_staff_flags() FROM PUBLIC;
