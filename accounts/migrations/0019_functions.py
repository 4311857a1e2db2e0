"""The functions accounts owns, adopted from its numbered SQL files.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0018_audit_compression"),
        ("agents", "0010_sessions_activity_index"),
        ("billing", "0012_monthly_reports"),
        ("usage", "0012_models_of_active_providers"),
        ("witchcraft", "0003_monitoring_windows"),
    ]

    operations = [
        DefineSQL(
            name="public.access_tokens_keep_revoked",
            sha256="9c476c1232c582cd2c0788ecf51baa8a9a1837723a8f6cb9184f026f6ddef2a9",
            adopted=True,
            sql=r"""-- 4. A revoked access token stays revoked (a policy cannot compare old and new values).
CREATE OR REPLACE FUNCTION public.access_tokens_keep_revoked() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'a revoked access token cannot be restored' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.access_tokens_keep_revoked() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.archived_audit_logs",
            sha256="dc104edd4ce8df24f19065311c67a9e352ad6c23f071585d4d74f57737b9f5ce",
            adopted=True,
            sql=r"""-- archived_audit_logs(p_user_id, p_from, p_to): the archived audit events (compressed and not)
-- of a user (NULL: everyone) created in [p_from, p_to) (NULL: unbounded), as audit_logs rows,
-- unordered. A user may ask for their own events only; staff and the service context for
-- anyone's or everyone's (42501 otherwise). SECURITY DEFINER: the batches mix users.
CREATE OR REPLACE FUNCTION public.archived_audit_logs(
    p_user_id bigint, p_from timestamptz, p_to timestamptz
) RETURNS SETOF public.audit_logs
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    -- IS DISTINCT FROM: an anonymous caller (user_id NULL) is refused too.
    IF NOT (auth.is_admin() OR auth.is_service())
       AND (p_user_id IS NULL OR auth.user_id() IS DISTINCT FROM p_user_id) THEN
        RAISE EXCEPTION 'archived_audit_logs: a user reads their own events only'
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT r.*
      FROM archive.audit_log_batches b
     CROSS JOIN LATERAL json_populate_recordset(NULL::public.audit_logs, b.rows) r
     WHERE (p_user_id IS NULL OR b.bucket = public.audit_log_bucket(p_user_id))
       AND (p_from IS NULL
            OR b.month >= date_trunc('month', p_from AT TIME ZONE 'UTC')::date)
       AND (p_to IS NULL OR b.month < p_to AT TIME ZONE 'UTC')
       AND (p_user_id IS NULL OR r.user_id = p_user_id)
       AND (p_from IS NULL OR r.created_at >= p_from)
       AND (p_to IS NULL OR r.created_at < p_to)
    UNION ALL
    SELECT a.id, a.created_at, a.event_type, a.severity, a.ip, a.user_agent, a.request_id,
           a.target_type, a.target_id, a.details, a.actor_id, a.user_id
      FROM public.audit_logs_archive a
     WHERE (p_user_id IS NULL OR a.user_id = p_user_id)
       AND (p_from IS NULL OR a.created_at >= p_from)
       AND (p_to IS NULL OR a.created_at < p_to);
END
$$;
REVOKE ALL ON FUNCTION public.archived_audit_logs(
    bigint, timestamp with time zone, timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.archived_audit_logs(
    bigint, timestamp with time zone, timestamp with time zone) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.audit_log_bucket",
            sha256="a3bc0971e3129b08b30166bc01e6df5b5b22cab5b7f4f7c4f19d901d6622ad45",
            adopted=True,
            sql=r"""-- audit_log_bucket(user): the batch bucket of a user's events (0 to 63; 0 without a user).
CREATE OR REPLACE FUNCTION public.audit_log_bucket(p_user_id bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (coalesce(p_user_id, 0) % 64)::smallint $$;
REVOKE ALL ON FUNCTION public.audit_log_bucket(bigint) FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.authenticate_access_token",
            sha256="3b2b65f1515b81a7d961f1f46f2e2e0072aecfaefeaeebff4c0418b18f07e5ef",
            adopted=True,
            sql=r"""-- Bearer-token authentication (accounts.tokens.token_authenticate), used by every API call.
--
-- The check happens before anyone is known, so it is a SECURITY DEFINER function: the token is
-- the credential, anyone may present one, and the function reveals nothing but "this token is
-- good, for this user". Only SHA-256 digests reach the database (idx_access_tokens_token_hash).
--
-- authenticate_access_token(p_token_hash, p_ip, p_user_agent) returns one row (user id, token
-- id) when the token is known, not revoked, not expired (expires_at <= now refuses) and its user
-- is active and not deleted; no row otherwise.
--
-- * last_used_at / last_used_ip are written at most once a minute per token: an API client
--   making many calls costs one write a minute, not one per call. The write skips a row another
--   transaction holds (SKIP LOCKED), so parallel calls with one token never wait on each other
--   for the bookkeeping.
-- * An expired token presented is audited (token_expired) once per token: the token row is
--   locked (SKIP LOCKED: whoever holds it is writing the same notice), and a notice already in
--   audit_logs (idx by user_id) means none is written again.
-- * "Now" is statement_timestamp(), not the transaction's start: a request's transaction may
--   have started a moment before the token is checked.
CREATE OR REPLACE FUNCTION public.authenticate_access_token(
    p_token_hash text,
    p_ip inet DEFAULT NULL,
    p_user_agent text DEFAULT ''
) RETURNS TABLE (out_user_id bigint, out_token_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := pg_catalog.statement_timestamp();
    v_token record;
BEGIN
    SELECT t.id, t.user_id, t.name, t.prefix, t.expires_at, t.revoked_at, t.last_used_at,
           (u.is_active AND u.deleted_at IS NULL) AS user_ok
      INTO v_token
      FROM public.access_tokens t
      JOIN public.users u ON u.id = t.user_id
     WHERE t.token_hash = p_token_hash;
    IF NOT FOUND OR v_token.revoked_at IS NOT NULL THEN
        RETURN;
    END IF;

    IF v_token.expires_at <= v_now THEN
        PERFORM 1 FROM public.access_tokens t WHERE t.id = v_token.id FOR UPDATE SKIP LOCKED;
        IF FOUND AND NOT EXISTS (
            SELECT 1 FROM public.audit_logs a
             WHERE a.user_id = v_token.user_id AND a.event_type = 'token_expired'
               AND a.target_type = 'access_token' AND a.target_id = v_token.id::text
        ) THEN
            INSERT INTO public.audit_logs (created_at, user_id, actor_id, event_type, severity,
                                           ip, user_agent, request_id, target_type, target_id,
                                           details)
            VALUES (pg_catalog.now(), v_token.user_id, auth.actor_id(), 'token_expired', 'info',
                    coalesce(p_ip, nullif(pg_catalog.current_setting('app.ip', true), '')::inet),
                    pg_catalog.left(coalesce(p_user_agent, ''), 300),
                    coalesce(pg_catalog.current_setting('app.request_id', true), ''),
                    'access_token', v_token.id::text,
                    pg_catalog.jsonb_build_object('name', v_token.name,
                                                  'prefix', v_token.prefix,
                                                  'expired_at', v_token.expires_at));
        END IF;
        RETURN;
    END IF;

    IF NOT v_token.user_ok THEN
        RETURN;
    END IF;

    IF v_token.last_used_at IS NULL OR v_token.last_used_at <= v_now - interval '1 minute' THEN
        UPDATE public.access_tokens t
           SET last_used_at = v_now, last_used_ip = p_ip
         WHERE t.id = (SELECT l.id FROM public.access_tokens l
                        WHERE l.id = v_token.id
                          AND (l.last_used_at IS NULL
                               OR l.last_used_at <= v_now - interval '1 minute')
                          FOR UPDATE SKIP LOCKED);
    END IF;

    out_user_id := v_token.user_id;
    out_token_id := v_token.id;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.authenticate_access_token(text, inet, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.authenticate_access_token(text, inet, text) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.authenticate_service_credential",
            sha256="e205b971241ae61f4b78349b881420bd8d3c7d50dd57b0701ad3061618442f9e",
            adopted=True,
            sql=r"""-- One row (credential id, scopes) for a credential that is known, not revoked and not expired
-- (expires_at <= now refuses); no row otherwise. Like authenticate_access_token (0008): the last
-- use is written at most once a minute, skipping a row another request is writing, and "now" is
-- the statement's time.
CREATE OR REPLACE FUNCTION public.authenticate_service_credential(p_token_hash text)
RETURNS TABLE (out_credential_id bigint, out_scopes text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_now timestamptz := pg_catalog.statement_timestamp();
    v_credential record;
BEGIN
    SELECT c.id, c.scopes, c.last_used_at INTO v_credential
      FROM public.service_credentials c
     WHERE c.token_hash = p_token_hash AND c.revoked_at IS NULL AND c.expires_at > v_now;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_credential.last_used_at IS NULL
       OR v_credential.last_used_at <= v_now - interval '1 minute' THEN
        UPDATE public.service_credentials c
           SET last_used_at = v_now
         WHERE c.id = (SELECT l.id FROM public.service_credentials l
                        WHERE l.id = v_credential.id
                          AND (l.last_used_at IS NULL
                               OR l.last_used_at <= v_now - interval '1 minute')
                          FOR UPDATE SKIP LOCKED);
    END IF;
    out_credential_id := v_credential.id;
    out_scopes := v_credential.scopes;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.authenticate_service_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.authenticate_service_credential(text) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.cleanup_old_audit_logs",
            sha256="e2d52729525b9314381ee5b04b25cbb66b4744ed2a8f74a03545eaa961723054",
            adopted=True,
            sql=r"""-- cleanup_old_audit_logs(p_days): move the audit events older than p_days days into
-- audit_logs_archive, in one statement (a row is either still in audit_logs or archived, never
-- both nor neither). Returns how many were moved. audit_logs is append-only for the app role;
-- this runs as the owner.
CREATE OR REPLACE FUNCTION public.cleanup_old_audit_logs(p_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_moved integer;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'cleanup_old_audit_logs: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_days IS NULL OR p_days < 1 THEN
        RAISE EXCEPTION 'cleanup_old_audit_logs: days must be at least 1, not %',
            coalesce(p_days::text, 'NULL') USING ERRCODE = '22023';
    END IF;

    WITH moved AS (
        DELETE FROM public.audit_logs
         WHERE created_at < now() - make_interval(days => p_days)
        RETURNING *
    )
    INSERT INTO public.audit_logs_archive (id, created_at, event_type, severity, ip, user_agent,
                                           request_id, target_type, target_id, details,
                                           actor_id, user_id, archived_at)
    SELECT id, created_at, event_type, severity, ip, user_agent, request_id, target_type,
           target_id, details, actor_id, user_id, now()
      FROM moved;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved;
END
$$;
REVOKE ALL ON FUNCTION public.cleanup_old_audit_logs(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.cleanup_old_audit_logs(integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.compress_audit_logs",
            sha256="4f4fd5ccfbb235e0a1615c5e8f304b5cc8e8c4596c631bec743d1621aeacbd9d",
            adopted=True,
            sql=r"""-- compress_audit_logs(p_days, p_max_rows): store at most p_max_rows audit events compressed,
-- the oldest first: every event of audit_logs_archive, and the events of audit_logs older than
-- p_days days. Returns {"archived": events taken from audit_logs, "compressed": every event
-- stored, "batches": batch rows written, "waiting": old enough events left for the next run}.
-- Service context only.
CREATE OR REPLACE FUNCTION public.compress_audit_logs(p_days integer, p_max_rows integer)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_cutoff timestamptz;
    v_from_archive integer;
    v_from_live integer;
    v_batches integer;
    v_waiting bigint;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'compress_audit_logs: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'compress_audit_logs: days must be between 1 and 3650, not %',
            coalesce(p_days::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_max_rows IS NULL OR p_max_rows NOT BETWEEN 0 AND 5000000 THEN
        RAISE EXCEPTION 'compress_audit_logs: rows per run must be between 0 and 5000000, not %',
            coalesce(p_max_rows::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_cutoff := now() - make_interval(days => p_days);

    -- The events taken this run, as audit_logs rows.
    IF pg_catalog.to_regclass('pg_temp.compress_audit_logs_taken') IS NULL THEN
        CREATE TEMPORARY TABLE compress_audit_logs_taken (LIKE public.audit_logs)
            ON COMMIT DROP;
    ELSE
        TRUNCATE compress_audit_logs_taken;
    END IF;

    WITH picked AS (
        SELECT a.id FROM public.audit_logs_archive a
         ORDER BY a.created_at, a.id LIMIT p_max_rows
    ), moved AS (
        DELETE FROM public.audit_logs_archive a USING picked WHERE a.id = picked.id
        RETURNING a.id, a.created_at, a.event_type, a.severity, a.ip, a.user_agent,
                  a.request_id, a.target_type, a.target_id, a.details, a.actor_id, a.user_id
    )
    INSERT INTO compress_audit_logs_taken
           (id, created_at, event_type, severity, ip, user_agent, request_id, target_type,
            target_id, details, actor_id, user_id)
    SELECT * FROM moved;
    GET DIAGNOSTICS v_from_archive = ROW_COUNT;

    WITH picked AS (
        SELECT a.id FROM public.audit_logs a
         WHERE a.created_at < v_cutoff
         ORDER BY a.created_at, a.id LIMIT p_max_rows - v_from_archive
    ), moved AS (
        DELETE FROM public.audit_logs a USING picked WHERE a.id = picked.id RETURNING a.*
    )
    INSERT INTO compress_audit_logs_taken SELECT * FROM moved;
    GET DIAGNOSTICS v_from_live = ROW_COUNT;

    -- One batch per month and bucket; one already stored gets the events appended (both sides
    -- are non-empty JSON arrays: '[a, b]' and '[c]' make '[a, b, c]').
    INSERT INTO archive.audit_log_batches AS b
           (month, bucket, first_at, last_at, row_count, rows)
    SELECT date_trunc('month', t.created_at AT TIME ZONE 'UTC')::date,
           public.audit_log_bucket(t.user_id),
           min(t.created_at), max(t.created_at), count(*),
           json_agg(t ORDER BY t.created_at, t.id)
      FROM compress_audit_logs_taken t
     GROUP BY 1, 2
    ON CONFLICT (month, bucket) DO UPDATE
       SET first_at = least(b.first_at, excluded.first_at),
           last_at = greatest(b.last_at, excluded.last_at),
           row_count = b.row_count + excluded.row_count,
           rows = (left(b.rows::text, -1) || ', ' || substr(excluded.rows::text, 2))::json,
           updated_at = now();
    GET DIAGNOSTICS v_batches = ROW_COUNT;

    SELECT (SELECT count(*) FROM public.audit_logs_archive)
           + (SELECT count(*) FROM public.audit_logs a WHERE a.created_at < v_cutoff)
      INTO v_waiting;
    RETURN jsonb_build_object('archived', v_from_live, 'compressed', v_from_archive + v_from_live,
                              'batches', v_batches, 'waiting', v_waiting);
END
$$;
REVOKE ALL ON FUNCTION public.compress_audit_logs(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compress_audit_logs(integer, integer) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.confirm_email",
            sha256="5001b811e362d519a0d54b9f4717e9c500d1749e2764092dc0bb0603bb9e35d4",
            adopted=True,
            sql=r"""-- confirm_email(p_token_hash): use a verification token. Returns the user id, or NULL when the
-- token is unknown, used, expired or for an address the account no longer has. The token is
-- the credential, so anyone may call it.
CREATE OR REPLACE FUNCTION public.confirm_email(p_token_hash text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_token public.email_verification_tokens%ROWTYPE;
    v_email text;
BEGIN
    SELECT * INTO v_token FROM public.email_verification_tokens t
     WHERE t.token_hash = p_token_hash AND t.used_at IS NULL AND t.expires_at > now()
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT u.email INTO v_email FROM public.users u WHERE u.id = v_token.user_id FOR UPDATE;
    IF v_email IS DISTINCT FROM v_token.email THEN
        RETURN NULL;
    END IF;
    UPDATE public.email_verification_tokens SET used_at = now() WHERE id = v_token.id;
    UPDATE public.users SET email_verified_at = coalesce(email_verified_at, now())
     WHERE id = v_token.user_id;
    RETURN v_token.user_id;
END
$$;
REVOKE ALL ON FUNCTION public.confirm_email(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.confirm_email(text) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.create_service_credential",
            sha256="25dced5b85bbeb1efff77fd1d48e308643a3e1f6d26342efb6ce6c14b0f7a855",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.create_service_credential(
    p_name text,
    p_token_hash text,
    p_prefix text,
    p_scopes text[],
    p_expires_at timestamptz,
    p_user_agent text DEFAULT ''
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staff bigint := public.service_credentials_issuer();
    v_id bigint;
BEGIN
    IF p_expires_at IS NULL OR p_expires_at <= pg_catalog.now() THEN
        RAISE EXCEPTION 'a service credential must expire in the future' USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.service_credentials (name, prefix, token_hash, scopes, created_by_id,
                                            created_at, expires_at)
    VALUES (p_name, p_prefix, p_token_hash, p_scopes, v_staff, pg_catalog.now(), p_expires_at)
    RETURNING id INTO v_id;
    -- The audit row names the credential, never its secret (nor its hash).
    PERFORM public.write_audit_log(
        p_event_type => 'service_credential_created',
        p_severity => 'warning',
        p_details => pg_catalog.jsonb_build_object(
            'name', p_name, 'prefix', p_prefix, 'scopes', pg_catalog.to_jsonb(p_scopes),
            'expires_at', p_expires_at),
        p_target_type => 'service_credential',
        p_target_id => v_id::text,
        p_user_agent => p_user_agent);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION public.create_service_credential(
    text, text, text, text[], timestamp with time zone, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.create_service_credential(
    text, text, text, text[], timestamp with time zone, text) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.create_user_with_profile",
            sha256="f3c78b7ee36967b21a92cf1fa8ead0ca4cfb5a430e7f3fe21e2a58438c2622cb",
            adopted=True,
            sql=r"""-- create_user_with_profile: the seed's registration flow, in one transaction.
--   users -> user_profiles -> user_quotas (free tier, current UTC month) -> a free subscription
--   -> audit_logs 'user_created'.
-- Runs before anyone is known (sign-up), so it is SECURITY DEFINER and open to anonymous callers;
-- it can only ever create a plain account (never staff). The email is normalised (trimmed,
-- lower-case); a taken email raises unique_violation (23505) on constraint users_email_key,
-- which callers recognise. p_password_hash is a Django password hash ('algorithm$...'), or an
-- unusable password ('!...').
CREATE OR REPLACE FUNCTION public.create_user_with_profile(
    p_email text, p_password_hash text, p_full_name text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_email text := lower(btrim(coalesce(p_email, '')));
    v_user_id bigint;
    v_tier public.subscription_tiers%ROWTYPE;
    v_period_start timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    v_period_end timestamptz;
BEGIN
    IF v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(v_email) > 254 THEN
        RAISE EXCEPTION 'invalid email address' USING ERRCODE = '22023';
    END IF;
    IF p_password_hash IS NULL OR (p_password_hash !~ '^[a-z0-9_]+\$' AND left(p_password_hash, 1) <> '!') THEN
        RAISE EXCEPTION 'p_password_hash must be a password hash, never a raw password'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_tier FROM public.subscription_tiers WHERE slug = 'free' AND is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the free tier is missing from subscription_tiers' USING ERRCODE = 'P0002';
    END IF;
    -- Month arithmetic in UTC, whatever the session's time zone.
    v_period_end := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')
                    AT TIME ZONE 'UTC';

    INSERT INTO public.users (email, password, full_name, is_active, is_staff, is_superuser,
                              date_joined)
    VALUES (v_email, p_password_hash, left(btrim(coalesce(p_full_name, '')), 200), true, false,
            false, now())
    RETURNING id INTO v_user_id;

    INSERT INTO public.user_profiles (user_id, display_name, timezone, locale, preferences,
                                      avatar_url, company, created_at, updated_at)
    VALUES (v_user_id, left(btrim(coalesce(p_full_name, '')), 120), 'UTC', 'en', '{}', '', '',
            now(), now());

    INSERT INTO public.user_quotas (user_id, tokens_limit, tokens_used, cost_limit, cost_used,
                                    period_start, period_end, updated_at)
    VALUES (v_user_id, v_tier.monthly_token_limit, 0, v_tier.monthly_cost_limit, 0,
            v_period_start, v_period_end, now());

    INSERT INTO public.user_subscriptions (user_id, tier_id, status, billing_cycle,
                                           current_period_start, current_period_end,
                                           cancel_at_period_end, payment_provider,
                                           provider_customer_id, provider_subscription_id,
                                           created_at, updated_at)
    VALUES (v_user_id, v_tier.id, 'active', 'monthly', v_period_start, v_period_end, false,
            '', '', '', now(), now());

    INSERT INTO public.audit_logs (created_at, user_id, actor_id, event_type, severity, ip,
                                   user_agent, request_id, target_type, target_id, details)
    VALUES (now(), v_user_id, coalesce(auth.actor_id(), v_user_id), 'user_created', 'info',
            nullif(current_setting('app.ip', true), '')::inet, '',
            coalesce(current_setting('app.request_id', true), ''), 'user', v_user_id::text,
            jsonb_build_object('tier', v_tier.slug));
    RETURN v_user_id;
END
$$;
REVOKE ALL ON FUNCTION public.create_user_with_profile(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.create_user_with_profile(text, text, text) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.delete_user_account",
            sha256="dd5b60808aa7543454f3d3ef8d8023cad0f8ac61a300d3e72ca4b213325aea83",
            adopted=True,
            sql=r"""-- delete_user_account(user): the owner deletes their account, in one transaction.
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
""",
        ),
        DefineSQL(
            name="public.end_password_reset_links",
            sha256="ed8760b50635e52a19f7d78bcb12b99eaaf1e7a56374ba489c683d9a14f601ed",
            adopted=True,
            sql=r"""-- end_password_reset_links(p_user_id): mark every still-valid reset link of the user used;
-- return how many. For whoever may change that user's password (auth.may_change_user).
CREATE OR REPLACE FUNCTION public.end_password_reset_links(p_user_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_ended integer;
BEGIN
    IF NOT auth.may_change_user(p_user_id) THEN
        RAISE EXCEPTION 'not allowed to end the reset links of user %', p_user_id
            USING ERRCODE = '42501';
    END IF;
    UPDATE public.password_reset_tokens t SET used_at = pg_catalog.now()
     WHERE t.user_id = p_user_id AND t.used_at IS NULL AND t.expires_at > pg_catalog.now();
    GET DIAGNOSTICS v_ended = ROW_COUNT;
    RETURN v_ended;
END
$$;
REVOKE ALL ON FUNCTION public.end_password_reset_links(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.end_password_reset_links(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.ensure_user_profile",
            sha256="b469c6e04b4c9fc63f3f82a4511510e4c21a128b17eb7ea7c95c57d7d843313f",
            adopted=True,
            sql=r"""-- Self-service account pages: a profile row for accounts made without one, and the deletion of
-- an account by its owner.
--
-- Both are SECURITY DEFINER with search_path pinned (pg_temp last) and every name qualified: the
-- runtime role cannot insert profiles, and deleting an account writes rows it may not write
-- (users.email and is_active, subscriptions, other people's sessions never; see the caller
-- checks). Lock order as everywhere: the user_quotas row first.
-- ensure_user_profile(user): create the user's profile with the defaults when it is missing.
-- Registration (create_user_with_profile) makes one, but accounts created another way (the
-- createsuperuser command, the admin) have none, and the profile page must still save. The
-- caller is the user themself, an admin or the service context (42501 otherwise). Returns
-- whether a row was created.
CREATE OR REPLACE FUNCTION public.ensure_user_profile(p_user_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_created integer;
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id AND u.deleted_at IS NULL)
    THEN
        RAISE EXCEPTION 'No such user.' USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.user_profiles (user_id, display_name, avatar_url, company, timezone,
                                      locale, preferences, created_at, updated_at)
    VALUES (p_user_id, '', '', '', 'UTC', 'en', '{}', pg_catalog.now(), pg_catalog.now())
    ON CONFLICT (user_id) DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    RETURN v_created > 0;
END
$$;
REVOKE ALL ON FUNCTION public.ensure_user_profile(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ensure_user_profile(bigint) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.revoke_service_credential",
            sha256="cb8d78d5387a102696a75d52f835f3aea634cc3103e1764aad0f9501528355b7",
            adopted=True,
            sql=r"""-- Returns whether the credential was revoked now (false: unknown or already revoked).
CREATE OR REPLACE FUNCTION public.revoke_service_credential(
    p_credential_id bigint,
    p_user_agent text DEFAULT ''
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staff bigint := public.service_credentials_issuer();
    v_name text;
    v_prefix text;
BEGIN
    UPDATE public.service_credentials c
       SET revoked_at = pg_catalog.now(), revoked_by_id = v_staff
     WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    RETURNING c.name, c.prefix INTO v_name, v_prefix;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM public.write_audit_log(
        p_event_type => 'service_credential_revoked',
        p_severity => 'warning',
        p_details => pg_catalog.jsonb_build_object('name', v_name, 'prefix', v_prefix),
        p_target_type => 'service_credential',
        p_target_id => p_credential_id::text,
        p_user_agent => p_user_agent);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.revoke_service_credential(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.revoke_service_credential(bigint, text) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.service_credentials_issuer",
            sha256="a1aacdf556f6c9e0e372831c06a94bb7b12ce4cca3f3aa69813af545ea1ff720",
            adopted=True,
            sql=r"""-- The staff member issuing or revoking: the caller in their own context (an impersonating staff
-- member is a plain user there, so refused), or the actor of a service context (an operator
-- command names one). Returns their id; refuses anyone else.
CREATE OR REPLACE FUNCTION public.service_credentials_issuer() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staff bigint := coalesce(auth.actor_id(), auth.user_id());
    v_ok boolean;
BEGIN
    IF NOT (auth.is_service() OR (auth.is_admin() AND auth.actor_id() IS NULL)) THEN
        RAISE EXCEPTION 'only staff may issue or revoke service credentials'
            USING ERRCODE = '42501';
    END IF;
    SELECT u.is_staff AND u.is_active AND u.deleted_at IS NULL INTO v_ok
      FROM public.users u WHERE u.id = v_staff;
    IF NOT coalesce(v_ok, false) THEN
        RAISE EXCEPTION 'service credentials are issued and revoked by an active staff member'
            USING ERRCODE = '42501';
    END IF;
    RETURN v_staff;
END
$$;
REVOKE ALL ON FUNCTION public.service_credentials_issuer() FROM PUBLIC;
""",
        ),
        DefineSQL(
            name="public.set_user_staff",
            sha256="1e479755212d37f5e5b951fa9b64c54221f5cdd4eac36e748987195c78edbaf7",
            adopted=True,
            sql=r"""-- Staff flags and impersonation.
--
-- 1. users.is_staff and users.is_superuser are not granted to the runtime role (0002): the one
--    way it changes them is set_user_staff(), which only an active superuser (or the service
--    context) may call.
-- 2. Every change of those flags, whatever the path (set_user_staff, an operator in psql, a
--    command running as the owner), writes a staff_flag_changed audit row with the old and the
--    new values: a trigger, so no path can forget it.
-- 3. While a staff member impersonates a user, requests run as that user with app.actor_id set
--    to the staff member (accounts/impersonation.py). django-hijack reads the staff member's
--    row to end the impersonation, so a user context may read the users row of its own actor,
--    and nothing more.
CREATE OR REPLACE FUNCTION public.set_user_staff(
    p_user_id bigint, p_is_staff boolean, p_is_superuser boolean
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_allowed boolean;
    v_user public.users%ROWTYPE;
BEGIN
    IF p_user_id IS NULL OR p_is_staff IS NULL OR p_is_superuser IS NULL THEN
        RAISE EXCEPTION 'set_user_staff: the user and both flags are required'
            USING ERRCODE = '22023';
    END IF;
    IF NOT auth.is_service() THEN
        -- The caller's own row decides, not the session's flag; an impersonated context is a
        -- plain user (never admin), so it is refused here too.
        SELECT u.is_superuser AND u.is_staff AND u.is_active AND u.deleted_at IS NULL
          INTO v_allowed
          FROM public.users u
         WHERE u.id = auth.user_id();
        IF NOT (auth.is_admin() AND coalesce(v_allowed, false)) THEN
            RAISE EXCEPTION 'only a superuser may change staff flags' USING ERRCODE = '42501';
        END IF;
    END IF;
    SELECT * INTO v_user FROM public.users u
     WHERE u.id = p_user_id AND u.deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'set_user_staff: no user %', p_user_id USING ERRCODE = '22023';
    END IF;
    IF v_user.is_staff = p_is_staff AND v_user.is_superuser = p_is_superuser THEN
        RETURN false;
    END IF;
    UPDATE public.users SET is_staff = p_is_staff, is_superuser = p_is_superuser
     WHERE id = p_user_id;  -- audited by users_audit_staff_flags
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.set_user_staff(bigint, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_user_staff(bigint, boolean, boolean) TO witchcraft_app;
""",
        ),
        DefineSQL(
            name="public.users_audit_staff_flags",
            sha256="fb64458273492a7486af68a7c2eb4d1d2281b88dd6f73e7bad610f328559803d",
            adopted=True,
            sql=r"""-- The audit row: subject = the changed account, actor = whoever the context says (the
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
""",
        ),
        DefineSQL(
            name="public.users_guard_changes",
            sha256="af6cb5624d420dc45a566892e8d58a9e72e03919f1f3100c5152848c8948fa1f",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.users_guard_changes() RETURNS trigger
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
""",
        ),
        DefineSQL(
            name="public.write_audit_log",
            sha256="c74426c1c832e75f06f129f4f51d350a765648195d53a5df4ec98080ac4d9ff5",
            adopted=True,
            sql=r"""CREATE OR REPLACE FUNCTION public.write_audit_log(
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
""",
        ),
    ]
