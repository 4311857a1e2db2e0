CREATE OR REPLACE TRIGGER users_audit_staff_flags AFTER UPDATE OF is_staff, is_superuser ON public.users
    FOR EACH ROW
    WHEN (OLD.is_staff IS DISTINCT FROM NEW.is_staff
          OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser)
    EXECUTE FUNCTION public.users_audit_staff_flags();
