-- account_tokens_delete_expired(): the accounts step of daily_maintenance. Deletes the tokens
-- that can no longer be used and returns how many of each:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
-- The keys are daily_maintenance's own, so the orchestrator returns them as they are.
-- Idempotent: a second run finds nothing to delete (every count 0). Service context only; not
-- granted to the runtime role (daily_maintenance reaches it as the owner).
CREATE OR REPLACE FUNCTION public.account_tokens_delete_expired() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'account_tokens_delete_expired: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;

    DELETE FROM public.access_tokens
     WHERE expires_at <= now()
        OR revoked_at <= now() - interval '30 days';
    GET DIAGNOSTICS v_tokens = ROW_COUNT;

    DELETE FROM public.password_reset_tokens
     WHERE used_at IS NOT NULL OR expires_at <= now();
    GET DIAGNOSTICS v_resets = ROW_COUNT;

    DELETE FROM public.email_verification_tokens
     WHERE used_at IS NOT NULL OR expires_at <= now();
    GET DIAGNOSTICS v_verifications = ROW_COUNT;

    RETURN jsonb_build_object(
        'expired_tokens_deleted', v_tokens,
        'reset_tokens_deleted', v_resets,
        'verification_tokens_deleted', v_verifications);
END
$$;
REVOKE ALL ON FUNCTION public.account_tokens_delete_expired() FROM PUBLIC;
