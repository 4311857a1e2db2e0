-- lock_user_quota(user): take the user's quota row lock now, for the rest of the transaction.
--
-- The lock order of the AI request flow is quota -> agent session (billing/sql/0002): a usage
-- row that names a session reaches the session through a trigger after record_ai_usage locked
-- the quota. Writing an assistant message locks its session (the position and counter
-- triggers of agents/sql/0003), so a flow that writes the message and then records its usage
-- in one transaction would take session -> quota, and deadlock against a usage record for the
-- same session arriving through another request. Such a flow calls this first.
--
-- The runtime role cannot lock user_quotas itself (SELECT ... FOR UPDATE needs an UPDATE grant
-- and an UPDATE policy, which it must not have). Caller check as everywhere: the user
-- themself, an admin or the service context (42501 otherwise). A user without a quota row
-- locks nothing (record_ai_usage then books nothing either).
CREATE OR REPLACE FUNCTION public.lock_user_quota(p_user_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    PERFORM auth.require_act_for(p_user_id);
    PERFORM 1 FROM public.user_quotas q WHERE q.user_id = p_user_id FOR UPDATE;
END
$$;
REVOKE ALL ON FUNCTION public.lock_user_quota(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.lock_user_quota(bigint) TO witchcraft_app;
