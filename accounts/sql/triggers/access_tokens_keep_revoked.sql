CREATE OR REPLACE TRIGGER access_tokens_keep_revoked BEFORE UPDATE OF revoked_at ON public.access_tokens
    FOR EACH ROW EXECUTE FUNCTION public.access_tokens_keep_revoked();
