-- Quota flows on their fast path (bench/README.md, issue 10): the same results as before with
-- fewer statements per call.
--
-- * The roll-forward (roll_quota_forward) only when the quota's period has ended, which the
--   quota row itself says: most calls no longer run its UPDATE.
-- * The alerts (raise_quota_alerts) only when the quota has reached 80 % of a limit, the lowest
--   threshold: below it raise_quota_alerts can create or re-open nothing (quota_may_alert is
--   exactly its WHERE clause at the lowest threshold).
-- quota_may_alert(quota): has the quota reached 80 % of its token or of its cost limit (a limit
-- of 0 never alerts)? A plain SQL expression (no SET clause: it is inlined into its callers,
-- which pin their search_path; only its owner may call it directly).
CREATE OR REPLACE FUNCTION public.quota_may_alert(p_quota public.user_quotas)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (($1).tokens_limit > 0 AND ($1).tokens_used::numeric * 100 >= ($1).tokens_limit::numeric * 80)
        OR (($1).cost_limit > 0 AND ($1).cost_used * 100 >= ($1).cost_limit * 80)
$$;
REVOKE ALL ON FUNCTION public.quota_may_alert(user_quotas) FROM PUBLIC;
