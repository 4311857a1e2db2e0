-- Temporary limit raises by staff (billing/sql/functions/raise_quota_limit.sql): the runtime
-- role reads the raises (row-level security: billing/sql/policies/quota_limit_raises.sql) and
-- writes them only through raise_quota_limit.
GRANT SELECT ON public.quota_limit_raises TO witchcraft_app;
