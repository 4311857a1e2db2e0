-- Usage partitions past the retention move to the archive schema (the seed: "archive old data
-- (>1 year) to separate tables"; issue 17). Never deleted: a month's partition is detached from
-- public.ai_usage_requests, moved to the schema archive with its rows, indexes, constraints and
-- row-level security as they were, and attached to archive.ai_usage_requests, which reads every
-- archived month at once under the same policies (owner and admins). The roll-ups
-- (ai_usage_daily, ai_usage_monthly, ai_usage_daily_totals) are separate tables computed when
-- each request was recorded: they keep the archived months, so every page shows them still.
--
-- A column added to public.ai_usage_requests later must be added to archive.ai_usage_requests
-- in the same migration (ADD COLUMN on it reaches the archived partitions), or the next
-- archived partition will not attach.

CREATE SCHEMA IF NOT EXISTS archive;
-- Nobody but the owner creates anything there; the runtime role may only look up names.
REVOKE ALL ON SCHEMA archive FROM PUBLIC;
GRANT USAGE ON SCHEMA archive TO witchcraft_app;

-- The same columns (names, types, NOT NULL) as the live table; no defaults (nothing inserts
-- here), no checks (the archived partitions keep their own), the partitions' own foreign keys.
CREATE TABLE archive.ai_usage_requests (LIKE public.ai_usage_requests)
    PARTITION BY RANGE (created_at);
ALTER TABLE archive.ai_usage_requests
    ADD CONSTRAINT ai_usage_requests_archive_pkey PRIMARY KEY (id, created_at);
-- A user's archived requests by time (and the column the policy filters on); an archived
-- partition's index on the same columns is attached to it.
CREATE INDEX ai_usage_requests_archive_user_recent
    ON archive.ai_usage_requests (user_id, created_at DESC);

ALTER TABLE archive.ai_usage_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive.ai_usage_requests FORCE ROW LEVEL SECURITY;
REVOKE ALL ON archive.ai_usage_requests FROM PUBLIC;
GRANT SELECT ON archive.ai_usage_requests TO witchcraft_app;
CREATE POLICY ai_usage_requests_archive_select_own ON archive.ai_usage_requests FOR SELECT
    TO witchcraft_app USING (user_id = (SELECT auth.user_id()));
CREATE POLICY ai_usage_requests_archive_select_admin ON archive.ai_usage_requests FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));

-- archive_usage_partitions(p_after_months, p_max_partitions): move at most p_max_partitions
-- monthly partitions of public.ai_usage_requests whose whole month ended p_after_months months
-- ago or earlier (UTC: with 12, on 2026-12-07 every month up to 2025-11), oldest first, to the
-- archive. Returns {"archived": n, "waiting": m}: m old enough partitions still live (the bound,
-- or a lock not obtained: the next run takes them). Service context only.
--
-- DETACH PARTITION ... CONCURRENTLY cannot run inside a transaction block, and daily maintenance
-- is one transaction: the plain DETACH takes an ACCESS EXCLUSIVE lock on ai_usage_requests for
-- a moment (no data is copied). As ensure_usage_partitions, it waits at most lock_timeout for
-- it (2 s here, so requests are never queued long behind it), three times with a pause between,
-- then leaves the partition for the next run instead of failing the maintenance.
-- The DEFAULT partition is never archived (rows wait there only when their month's partition is
-- missing; ensure_usage_partitions(months_ahead, months_back) places them).
CREATE OR REPLACE FUNCTION public.archive_usage_partitions(
    p_after_months integer, p_max_partitions integer
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_before date;
    v_part record;
    v_archived integer := 0;
    v_waiting integer := 0;
    v_done boolean;
    v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
BEGIN
    IF NOT auth.is_service() THEN
        RAISE EXCEPTION 'archive_usage_partitions: only the service context may run maintenance'
            USING ERRCODE = '42501';
    END IF;
    IF p_after_months IS NULL OR p_after_months NOT BETWEEN 1 AND 120 THEN
        RAISE EXCEPTION 'archive_usage_partitions: months must be between 1 and 120, not %',
            coalesce(p_after_months::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_max_partitions IS NULL OR p_max_partitions NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'archive_usage_partitions: partitions per run must be between 0 and 120, not %',
            coalesce(p_max_partitions::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_before := (pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')
                 - pg_catalog.make_interval(months => p_after_months))::date;

    FOR v_part IN
        SELECT m.relname, m.first_day
          FROM (SELECT c.relname,
                       pg_catalog.to_date(substring(c.relname FROM 'y([0-9]{4}m[0-9]{2})$'),
                                          'YYYY"m"MM') AS first_day
                  FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'public.ai_usage_requests'::regclass
                   AND c.relname ~ '^ai_usage_requests_y[0-9]{4}m[0-9]{2}$') m
         WHERE (m.first_day + interval '1 month')::date <= v_before
         ORDER BY m.first_day
    LOOP
        IF v_archived >= p_max_partitions
           OR pg_catalog.to_regclass('archive.' || pg_catalog.quote_ident(v_part.relname)) IS NOT NULL
        THEN
            v_waiting := v_waiting + 1;
            CONTINUE;
        END IF;
        v_done := false;
        FOR v_attempt IN 1..3 LOOP
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
                EXECUTE pg_catalog.format(
                    'ALTER TABLE public.ai_usage_requests DETACH PARTITION public.%I',
                    v_part.relname);
                EXECUTE pg_catalog.format('ALTER TABLE public.%I SET SCHEMA archive',
                                          v_part.relname);
                EXECUTE pg_catalog.format(
                    'ALTER TABLE archive.ai_usage_requests ATTACH PARTITION archive.%I'
                    ' FOR VALUES FROM (%L) TO (%L)', v_part.relname,
                    v_part.first_day::timestamp AT TIME ZONE 'UTC',
                    (v_part.first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
                -- As every partition: queried directly it would skip the parent's policies.
                EXECUTE pg_catalog.format('ALTER TABLE archive.%I ENABLE ROW LEVEL SECURITY',
                                          v_part.relname);
                EXECUTE pg_catalog.format('ALTER TABLE archive.%I FORCE ROW LEVEL SECURITY',
                                          v_part.relname);
                EXECUTE pg_catalog.format('REVOKE ALL ON archive.%I FROM PUBLIC, witchcraft_app',
                                          v_part.relname);
                v_done := true;
            EXCEPTION WHEN lock_not_available THEN
                PERFORM pg_catalog.pg_sleep(v_attempt);
            END;
            EXIT WHEN v_done;
        END LOOP;
        IF v_done THEN
            v_archived := v_archived + 1;
        ELSE
            v_waiting := v_waiting + 1;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
    RETURN pg_catalog.jsonb_build_object('archived', v_archived, 'waiting', v_waiting);
END
$$;
REVOKE ALL ON FUNCTION public.archive_usage_partitions(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.archive_usage_partitions(integer, integer) TO witchcraft_app;

-- daily_maintenance(...), third version (second: usage/sql/0005_usage_daily_totals.sql): the
-- same, and the usage partitions past the retention archived. The retention comes from the
-- settings (witchcraft.maintenance passes them); the defaults are theirs.
DROP FUNCTION public.daily_maintenance();
-- daily_maintenance(): the seed's daily job, in one transaction. Returns what it did:
--   expired_tokens_deleted       access tokens expired, or revoked more than 30 days ago (the
--                                recently revoked ones stay for the user's security page)
--   reset_tokens_deleted         password reset tokens used or expired
--   verification_tokens_deleted  email verification tokens used or expired
--   sessions_ended               agent sessions without activity for 24 hours, ended at their
--                                last activity
--   audit_logs_archived          audit events older than 90 days moved to audit_logs_archive
--   partitions_created           ai_usage_requests partitions created for the next 3 months
--   usage_partitions_archived    partitions older than p_usage_archive_after_months months
--                                moved to the archive schema (at most
--                                p_usage_partitions_per_run a run: archive_usage_partitions)
--   usage_partitions_waiting     old enough partitions left for the next run
--   session_stats_rows           rows of agent_session_stats after its refresh
--   usage_totals_rows            rows of ai_usage_daily_totals written (the last 3 days, and
--                                any day not covered yet: refresh_usage_daily_totals)
-- Idempotent: a second run finds nothing to do (every count 0 but session_stats_rows,
-- usage_totals_rows and usage_partitions_waiting).
CREATE FUNCTION public.daily_maintenance(
    p_usage_archive_after_months integer DEFAULT 12,
    p_usage_partitions_per_run integer DEFAULT 2
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_tokens integer;
    v_resets integer;
    v_verifications integer;
    v_sessions integer;
    v_archived integer;
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

    v_archived := public.cleanup_old_audit_logs(90);

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
        'audit_logs_archived', v_archived,
        'partitions_created', v_partitions,
        'usage_partitions_archived', (v_usage_archive ->> 'archived')::integer,
        'usage_partitions_waiting', (v_usage_archive ->> 'waiting')::integer,
        'session_stats_rows', v_stats,
        'usage_totals_rows', v_totals);
END
$$;
REVOKE ALL ON FUNCTION public.daily_maintenance(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.daily_maintenance(integer, integer) TO witchcraft_app;
