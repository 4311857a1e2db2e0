CREATE OR REPLACE FUNCTION public.users_guard_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF auth.is_superuser() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.is_staff OR NEW.is_superuser THEN
            RAISE EXCEPTION 'only a superuser may create a staff account' USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.is_staff IS DISTINCT FROM OLD.is_staff
       OR NEW.is_superuser IS DISTINCT FROM OLD.is_superuser THEN
        RAISE EXCEPTION 'only a superuser may change staff flags' USING ERRCODE = '42501';
    END IF;
    IF (pg_catalog.to_jsonb(NEW) - 'email_verified_at')
           IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) - 'email_verified_at')
       AND NOT auth.may_change_user(OLD.id) THEN
        RAISE EXCEPTION 'not allowed to change user %', OLD.id USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.users_guard_changes() FROM PUBLIC;
