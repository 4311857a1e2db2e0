CREATE OR REPLACE TRIGGER users_guard_changes BEFORE INSERT OR UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.users_guard_changes();
