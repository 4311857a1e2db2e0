-- Audit events older than AUDIT_COMPRESS_AFTER_DAYS (90) are stored compressed (the seed:
-- "compress audit logs after 90 days"; issue 17).
--
-- PostgreSQL compresses a value (pglz, TOAST) only when its row passes about 2 kB, so one
-- audit row (~300 bytes) is never compressed on its own, and neither is a batch of one user's
-- few events of a month (measured on the demo data: 2.6 events per user and month past 90
-- days, stored larger than before). The archive therefore keeps one row per UTC month and
-- bucket of users (user_id modulo 64; events without a user in bucket 0) in
-- archive.audit_log_batches, holding those events as one JSON array of audit_logs rows (every
-- column): hundreds of events repeating their keys, user agents and addresses, which pglz
-- shrinks several times, and the per-row overhead of the heap and the indexes goes too.
-- README "Retention" has the bytes per row measured before and after. Reading one user's
-- events decompresses their bucket's months only (1/64 of the archive of those months).
--
-- compress_audit_logs(days, max_rows) does it in bounded batches (daily maintenance): the oldest
-- events first, from audit_logs_archive (where cleanup_old_audit_logs moved events uncompressed)
-- and then from audit_logs; a month and bucket already stored gets the new events appended.
-- Each event is in exactly one of audit_logs, audit_logs_archive and a batch: it is deleted
-- where it was in the statement that stores it.
--
-- archived_audit_logs(user, from, to) reads both archives back as audit_logs rows (the staff
-- archive page, the user's data export): a user reads their own events, as in audit_logs, staff
-- and the service context anyone's. The batches mix users, so row-level security on them lets
-- only staff read them directly; nobody but these functions writes the archive.

CREATE TABLE archive.audit_log_batches (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    month date NOT NULL,
    bucket smallint NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    row_count integer NOT NULL,
    -- A JSON array of audit_logs rows (json keeps the text as written: smaller than jsonb's
    -- binary form once compressed, and appending is a text operation).
    rows json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_batches_month_first_day CHECK (month = date_trunc('month', month)),
    CONSTRAINT audit_log_batches_bucket_range CHECK (bucket BETWEEN 0 AND 63),
    CONSTRAINT audit_log_batches_span CHECK (first_at <= last_at),
    CONSTRAINT audit_log_batches_rows_positive CHECK (row_count > 0)
);
-- One batch per month and bucket; the months of a time range.
CREATE UNIQUE INDEX audit_log_batches_month_bucket
    ON archive.audit_log_batches (month, bucket);

ALTER TABLE archive.audit_log_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive.audit_log_batches FORCE ROW LEVEL SECURITY;
REVOKE ALL ON archive.audit_log_batches FROM PUBLIC;
GRANT SELECT ON archive.audit_log_batches TO witchcraft_app;
CREATE POLICY audit_log_batches_select_admin ON archive.audit_log_batches FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- The uncompressed archive is read like audit_logs too: the owner's own events (their export).
CREATE POLICY audit_logs_archive_select_own ON public.audit_logs_archive FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));

-- audit_log_bucket(user): the batch bucket of a user's events (0 to 63; 0 without a user).
CREATE OR REPLACE FUNCTION public.audit_log_bucket(p_user_id bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (coalesce(p_user_id, 0) % 64)::smallint $$;
REVOKE ALL ON FUNCTION public.audit_log_bucket(bigint) FROM PUBLIC;

-- compress_audit_logs(p_days, p_max_rows): store at most p_max_rows audit events compressed,
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

-- archived_audit_logs(p_user_id, p_from, p_to): the archived audit events (compressed and not)
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
REVOKE ALL ON FUNCTION public.archived_audit_logs(bigint, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.archived_audit_logs(bigint, timestamptz, timestamptz)
    TO witchcraft_app;

-- daily_maintenance(...), fourth version (third: usage/sql/0009_usage_archive.sql): the same,
-- but old audit events are stored compressed (compress_audit_logs, bounded) instead of moved
-- to audit_logs_archive in one unbounded statement.
DROP FUNCTION public.daily_maintenance(integer, integer);
-- daily_maintenance(): the seed's daily job, in one transaction. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity
--   audit_logs_archived          audit events older than p_audit_compress_after_days days taken
--                                from audit_logs into the compressed archive
--   audit_rows_compressed        every event stored compressed (those, and any that waited
--                                uncompressed in audit_logs_archive), at most
--                                p_audit_rows_per_run a run: compress_audit_logs
--   audit_rows_waiting           old enough events left for the next run
--   partitions_created           ai_usage_requests partitions created for the next 3 months
--   usage_partitions_archived    partitions older than p_usage_archive_after_months months
--                                moved to the archive schema (at most
--                                p_usage_partitions_per_run a run: archive_usage_partitions)
--   usage_partitions_waiting     old enough partitions left for the next run
--   session_stats_rows           rows of agent_session_stats after its refresh
--   usage_totals_rows            rows of ai_usage_daily_totals written (the last 3 days, and
--                                any day not covered yet: refresh_usage_daily_totals)
-- Idempotent: a second run finds nothing to do (every count 0 but session_stats_rows,
-- usage_totals_rows and the waiting counts).
CREATE FUNCTION public.daily_maintenance(
    p_usage_archive_after_months integer DEFAULT 12,
    p_usage_partitions_per_run integer DEFAULT 2,
    p_audit_compress_after_days integer DEFAULT 90,
    p_audit_rows_per_run integer DEFAULT 50000
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
    v_sessions integer;
    v_audit jsonb;
    v_partitions integer;
    v_usage_archive jsonb;
    v_stats bigint;
    v_totals integer;
    v_lock_timeout text;
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'daily_maintenance: only the service context may run maintenance'
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

    -- ended_at = last_activity_at: the session ended when it was last used, not when we noticed
    -- (and agent_sessions_active_not_ended wants is_active false once ended_at is set).
    UPDATE public.agent_sessions
       SET is_active = false, ended_at = last_activity_at
     WHERE is_active AND last_activity_at < now() - interval '24 hours';
    GET DIAGNOSTICS v_sessions = ROW_COUNT;

    v_audit := public.compress_audit_logs(p_audit_compress_after_days, p_audit_rows_per_run);

    -- ensure_usage_partitions sets a 5 s lock_timeout for the rest of the transaction: keep it
    -- to the partition work.
    v_lock_timeout := current_setting('lock_timeout');
    v_partitions := public.ensure_usage_partitions(3);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    v_usage_archive := public.archive_usage_partitions(p_usage_archive_after_months,
                                                       p_usage_partitions_per_run);

    v_stats := public.refresh_agent_session_stats();
    v_totals := public.refresh_usage_daily_totals(3);

    RETURN jsonb_build_object(
        'expired_tokens_deleted', v_tokens,
        'reset_tokens_deleted', v_resets,
        'verification_tokens_deleted', v_verifications,
        'sessions_ended', v_sessions,
        'audit_logs_archived', (v_audit ->> 'archived')::integer,
        'audit_rows_compressed', (v_audit ->> 'compressed')::integer,
        'audit_rows_waiting', (v_audit ->> 'waiting')::bigint,
        'partitions_created', v_partitions,
        'usage_partitions_archived', (v_usage_archive ->> 'archived')::integer,
        'usage_partitions_waiting', (v_usage_archive ->> 'waiting')::integer,
        'session_stats_rows', v_stats,
        'usage_totals_rows', v_totals);
END
$$;
REVOKE ALL ON FUNCTION public.daily_maintenance(integer, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.daily_maintenance(integer, integer, integer, integer)
    TO witchcraft_app;
