-- Undoes 0015_audit_compression.sql; the migration then re-creates the third
-- daily_maintenance() from usage/sql/0009_usage_archive.sql. Compressed events go back to
-- audit_logs_archive, uncompressed (they are never dropped).
DROP FUNCTION IF EXISTS public.daily_maintenance(integer, integer, integer, integer);
INSERT INTO public.audit_logs_archive (id, created_at, event_type, severity, ip, user_agent,
                                       request_id, target_type, target_id, details, actor_id,
                                       user_id, archived_at)
SELECT r.id, r.created_at, r.event_type, r.severity, r.ip, r.user_agent, r.request_id,
       r.target_type, r.target_id, r.details, r.actor_id, r.user_id, b.updated_at
  FROM archive.audit_log_batches b
 CROSS JOIN LATERAL json_populate_recordset(NULL::public.audit_logs, b.rows) r;
DROP FUNCTION IF EXISTS public.archived_audit_logs(bigint, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS public.compress_audit_logs(integer, integer);
DROP FUNCTION IF EXISTS public.audit_log_bucket(bigint);
DROP POLICY IF EXISTS audit_logs_archive_select_own ON public.audit_logs_archive;
DROP TABLE IF EXISTS archive.audit_log_batches;
