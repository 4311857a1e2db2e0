REVOKE ALL ON public.quota_limit_raises FROM witchcraft_app;
