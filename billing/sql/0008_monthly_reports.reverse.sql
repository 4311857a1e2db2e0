-- Undo billing/sql/0008_monthly_reports.sql. The migration runs this after reinstalling
-- monthly_maintenance()'s second version (billing/sql/0005), which no longer calls the function.
DROP FUNCTION public.generate_monthly_report(date);
DELETE FROM public.usage_monthly_reports WHERE dimension = 'total';
ALTER TABLE public.usage_monthly_reports
    DROP CONSTRAINT usage_monthly_reports_counts_non_negative,
    DROP COLUMN subscribers,
    DROP CONSTRAINT usage_monthly_reports_dimension_valid,
    ADD CONSTRAINT usage_monthly_reports_dimension_valid CHECK (
        dimension IN ('tier', 'provider', 'model')),
    ADD CONSTRAINT usage_monthly_reports_counts_non_negative CHECK (
        requests >= 0 AND tokens >= 0 AND cost >= 0 AND users >= 0);
