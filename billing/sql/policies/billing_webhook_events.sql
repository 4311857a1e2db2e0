-- Row-level security of public.billing_webhook_events: the policies below are all of its policies.
ALTER TABLE public.billing_webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_webhook_events FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS billing_webhook_events_select_admin ON public.billing_webhook_events;
CREATE POLICY billing_webhook_events_select_admin ON public.billing_webhook_events FOR SELECT
    TO witchcraft_app USING ((SELECT auth.is_admin()));
