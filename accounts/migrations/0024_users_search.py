"""New definitions of functions/public.users_search.

Written by ``manage.py sqlmigrations`` from the live files (witchcraft/platform/sqlobjects/):
a frozen copy of each definition as it was. Never edit it; edit the live file and run the command
again.
"""

from django.db import migrations

from witchcraft.platform.sqlobjects import DefineSQL


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0023_user_directory_search_indexes"),
        ("agents", "0013_maintenance_steps"),
        ("billing", "0015_maintenance_steps"),
        ("usage", "0016_error_message"),
        ("witchcraft", "0006_maintenance_steps"),
    ]

    operations = [
        DefineSQL(
            name="public.users_search",
            sha256="4133d43f07b73a0e95047fb737ba88283359abd61bcf78ec5c21c4270d95e554",
            drop_on_reverse=[
                "DROP FUNCTION IF EXISTS public.users_search(text)",
            ],
            sql=r"""-- users_search(p_text): the ids of the users whose email or name contains p_text, ignoring
-- case; % and _ are plain characters. For the staff user directory: staff and the service
-- context only (42501 otherwise). SECURITY DEFINER so that the trigram indexes
-- users_email_trgm and users_full_name_trgm serve the search: under row-level security the
-- planner may not use an index for LIKE (not leakproof) ahead of the policies.
CREATE OR REPLACE FUNCTION public.users_search(p_text text) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_pattern text;
BEGIN
    IF NOT (auth.is_admin() OR auth.is_service()) THEN
        RAISE EXCEPTION 'users_search: staff only' USING ERRCODE = '42501';
    END IF;
    IF coalesce(p_text, '') = '' THEN
        RETURN;
    END IF;
    v_pattern := '%' || replace(replace(replace(lower(p_text), '\', '\\'), '%', '\%'), '_', '\_')
                 || '%';
    RETURN QUERY
    SELECT u.id FROM public.users u
     WHERE u.email LIKE v_pattern OR lower(u.full_name) LIKE v_pattern;
END
$$;
REVOKE ALL ON FUNCTION public.users_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.users_search(text) TO witchcraft_app;
""",
        ),
    ]
