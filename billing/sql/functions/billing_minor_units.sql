-- billing_minor_units(object, key): a provider's amount in minor units (cents) as dollars;
-- NULL when absent or not a whole non-negative number. Internal.
CREATE OR REPLACE FUNCTION public.billing_minor_units(p_object jsonb, p_key text)
RETURNS numeric
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_object->>p_key ~ '^[0-9]{1,12}$' THEN (p_object->>p_key)::numeric / 100 END
$$;
REVOKE ALL ON FUNCTION public.billing_minor_units(jsonb, text) FROM PUBLIC;
