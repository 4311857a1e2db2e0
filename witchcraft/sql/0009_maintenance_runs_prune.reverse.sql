REVOKE DELETE ON public.maintenance_runs FROM witchcraft_app;
