-- billing_epoch(value): a provider's Unix timestamp as timestamptz; NULL when not one. Internal.
CREATE OR REPLACE FUNCTION public.billing_epoch(p_value text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_value ~ '^[0-9]{1,11}$' THEN to_timestamp(p_value::bigint) END
$$;
REVOKE ALL ON FUNCTION public.billing_epoch(text) FROM PUBLIC;
