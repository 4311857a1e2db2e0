-- delete_user_account(user): the owner deletes their account, in one transaction.
--
-- Personal data is erased, history the law expects us to keep is kept:
--   users            email -> 'deleted-<id>@deleted.invalid' (lower-case, unique), full_name '',
--                    an unusable password ('!' and random characters, as Django writes one),
--                    is_active false, deleted_at now(): the row stays, history points at it
--   user_profiles    display name, avatar, company, preferences cleared; time zone UTC, locale en
--   access_tokens    revoked; names and last-use IP addresses cleared
--   password_reset_tokens, email_verification_tokens, user_sessions, two-factor devices
--                    (django-otp's TOTP and static devices and their codes): deleted
--   agent_*          conversation content erased (message content and metadata, tool call
--                    arguments, results and errors, feedback comments, session titles and
--                    metadata); the rows stay, usage metering refers to them; open sessions end
--   user_subscriptions  the current one canceled now (user_subscriptions_one_current then
--                    holds no row for the user); past ones kept
--   kept as they are: payment_history, ai_usage_* (raw rows and roll-ups), user_quotas,
--                    usage_alerts, audit_logs
-- and an audit row 'account_deleted' (details: counts only, never personal data).
--
-- Caller: the user themself in their own context (not while a staff member impersonates them),
-- or the service context (an operator); 42501 otherwise, and for staff accounts, whose staff
-- rights an administrator removes first (set_user_staff). 22023 for an unknown or already
-- deleted account. Returns the counts written to the audit row.
CREATE OR REPLACE FUNCTION public.delete_user_account(p_user_id bigint) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_user public.users%ROWTYPE;
    v_email text;
    v_now timestamptz := pg_catalog.now();
    v_count integer;
    v_tokens integer;
    v_one_time integer;
    v_sessions integer;
    v_devices integer;
    v_messages integer;
    v_tool_calls integer;
    v_feedback integer;
    v_agent_sessions integer;
    v_subscriptions integer;
    v_summary jsonb;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'delete_user_account: the user is required' USING ERRCODE = '22023';
    END IF;
    IF NOT auth.is_service() THEN
        -- IS DISTINCT FROM: an anonymous caller (user_id NULL) is refused too.
        IF auth.user_id() IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'only the owner may delete an account' USING ERRCODE = '42501';
        END IF;
        IF auth.actor_id() IS NOT NULL AND auth.actor_id() IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'an account cannot be deleted while it is impersonated'
                USING ERRCODE = '42501';
        END IF;
    END IF;

    -- Lock order: the quota row first (billing/sql/0002), then the user.
    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
    SELECT * INTO v_user FROM public.users u WHERE u.id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such user.' USING ERRCODE = '22023';
    END IF;
    IF v_user.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'This account is already deleted.' USING ERRCODE = '22023';
    END IF;
    IF v_user.is_staff OR v_user.is_superuser THEN
        RAISE EXCEPTION 'staff accounts are removed by an administrator' USING ERRCODE = '42501';
    END IF;

    -- The placeholder address is unique by the id; should someone have registered it anyway,
    -- a random suffix keeps them from blocking the deletion.
    v_email := 'deleted-' || p_user_id || '@deleted.invalid';
    IF EXISTS (SELECT 1 FROM public.users u WHERE u.email = v_email AND u.id <> p_user_id) THEN
        v_email := 'deleted-' || p_user_id || '-'
                   || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')
                   || '@deleted.invalid';
    END IF;
    UPDATE public.users AS u
       SET email = v_email,
           full_name = '',
           password = '!' || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '')
                          || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', ''),
           is_active = false,
           deleted_at = v_now
     WHERE u.id = p_user_id;

    UPDATE public.user_profiles AS p
       SET display_name = '', avatar_url = '', company = '', preferences = '{}',
           timezone = 'UTC', locale = 'en', updated_at = v_now
     WHERE p.user_id = p_user_id;

    UPDATE public.access_tokens AS t SET revoked_at = v_now
     WHERE t.user_id = p_user_id AND t.revoked_at IS NULL;
    GET DIAGNOSTICS v_tokens = ROW_COUNT;
    UPDATE public.access_tokens AS t SET name = 'deleted', last_used_ip = NULL
     WHERE t.user_id = p_user_id;

    DELETE FROM public.password_reset_tokens t WHERE t.user_id = p_user_id;
    GET DIAGNOSTICS v_one_time = ROW_COUNT;
    DELETE FROM public.email_verification_tokens t WHERE t.user_id = p_user_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_one_time := v_one_time + v_count;

    DELETE FROM public.user_sessions s WHERE s.user_id = p_user_id;
    GET DIAGNOSTICS v_sessions = ROW_COUNT;

    -- django-otp keeps recovery codes in rows of their device (no cascade in the database).
    DELETE FROM public.otp_static_statictoken st
     WHERE st.device_id IN (SELECT d.id FROM public.otp_static_staticdevice d
                             WHERE d.user_id = p_user_id);
    DELETE FROM public.otp_static_staticdevice d WHERE d.user_id = p_user_id;
    GET DIAGNOSTICS v_devices = ROW_COUNT;
    DELETE FROM public.otp_totp_totpdevice d WHERE d.user_id = p_user_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_devices := v_devices + v_count;

    UPDATE public.agent_messages AS m SET content = '', metadata = '{}'
     WHERE m.user_id = p_user_id;
    GET DIAGNOSTICS v_messages = ROW_COUNT;
    UPDATE public.agent_tool_calls AS c SET arguments = '{}', result = NULL, error = ''
     WHERE c.user_id = p_user_id;
    GET DIAGNOSTICS v_tool_calls = ROW_COUNT;
    UPDATE public.agent_feedback AS f SET comment = '' WHERE f.user_id = p_user_id;
    GET DIAGNOSTICS v_feedback = ROW_COUNT;
    UPDATE public.agent_sessions AS s
       SET title = '', metadata = '{}', is_active = false,
           ended_at = CASE WHEN s.is_active THEN greatest(s.started_at, v_now) ELSE s.ended_at END
     WHERE s.user_id = p_user_id;
    GET DIAGNOSTICS v_agent_sessions = ROW_COUNT;

    UPDATE public.user_subscriptions AS s
       SET status = 'canceled', canceled_at = v_now, cancel_at_period_end = false,
           updated_at = v_now
     WHERE s.user_id = p_user_id AND s.status IN ('trialing', 'active', 'past_due');
    GET DIAGNOSTICS v_subscriptions = ROW_COUNT;

    v_summary := jsonb_build_object(
        'tokens_revoked', v_tokens,
        'one_time_tokens_deleted', v_one_time,
        'sessions_ended', v_sessions,
        'two_factor_devices_removed', v_devices,
        'messages_erased', v_messages,
        'tool_calls_erased', v_tool_calls,
        'feedback_erased', v_feedback,
        'agent_sessions_erased', v_agent_sessions,
        'subscriptions_canceled', v_subscriptions);
    PERFORM public.write_audit_log(
        p_event_type => 'account_deleted',
        p_user_id => p_user_id,
        p_severity => 'warning',
        p_details => v_summary,
        p_target_type => 'user',
        p_target_id => p_user_id::text);
    RETURN v_summary;
END
$$;
REVOKE ALL ON FUNCTION public.delete_user_account(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.delete_user_account(bigint) TO witchcraft_app;
