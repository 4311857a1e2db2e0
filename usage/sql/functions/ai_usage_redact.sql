-- ai_usage_redact(message): a provider's error message fit to keep on a usage row, which staff
-- read: credentials it may echo back ("Incorrect API key provided: sk-proj-...", a bearer
-- header, a Witchcraft token "wc_...", "api_key=...") are replaced by [redacted]. Applied by
-- record_ai_usage and record_ai_usage_batch to every error_message they store.
CREATE OR REPLACE FUNCTION public.ai_usage_redact(p_message text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT regexp_replace(
             regexp_replace(
               regexp_replace(p_message,
                 '(bearer|basic)\s+[^\s"'',;]+', '\1 [redacted]', 'gi'),
               '\m(sk|pk|rk|wc|key|sess|ghp|xox[abp])[-_][A-Za-z0-9_\-]{6,}', '[redacted]', 'g'),
             '((api[_-]?key|token|secret|password)\s*[=:]\s*["'']?)[^\s"'',;&]+',
             '\1[redacted]', 'gi')
$$;
REVOKE ALL ON FUNCTION public.ai_usage_redact(text) FROM PUBLIC;
