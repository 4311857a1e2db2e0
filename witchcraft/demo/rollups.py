"""What the flows and triggers would have computed, built set-wise from the loaded raw rows.

The load runs with triggers off (``session_replication_role = replica``), so everything the
real flows keep up to date row by row is computed here, one statement per kind, from the raw
rows of a batch of demo users, so that it agrees with them by construction:

- ``ai_usage_daily`` and ``ai_usage_monthly``: what ``record_ai_usage`` adds per row;
- the session counters and totals: what the triggers of ``agents/sql/0003_session_counters.sql``
  add per message, tool call and usage row;
- the quota's used tokens and cost: the usage rows of its current period;
- ``usage_alerts``: the 80 % and 100 % crossings of each month, at the row that crossed, with
  the plan's limits (alerts of past months resolved when their period rolled over).

Every statement works on whole users (each group of a roll-up belongs to one user), so running
them batch by batch, as soon as a batch's rows are in, gives exactly what one run over all the
rows would. A batch is ``%(ids)s`` (the users' ids) within ``%(lo)s .. %(hi)s`` (their range,
which leads the planner to the user_id indexes even on tables that have no statistics yet).
"""

from __future__ import annotations

from datetime import datetime

BATCH = "{alias}.user_id BETWEEN %(lo)s AND %(hi)s AND {alias}.user_id = ANY(%(ids)s)"

DAILY = f"""
INSERT INTO public.ai_usage_daily
       (user_id, usage_date, provider_id, model_id, request_count, success_count, error_count,
        input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, total_tokens, cost,
        latency_ms_sum, latency_count, updated_at)
SELECT r.user_id, (r.created_at AT TIME ZONE 'UTC')::date, r.provider_id, r.model_id,
       count(*), count(*) FILTER (WHERE r.status = 'success'),
       count(*) FILTER (WHERE r.status <> 'success'),
       sum(r.input_tokens), sum(r.output_tokens), sum(r.cached_input_tokens),
       sum(r.reasoning_tokens), sum(r.total_tokens), sum(r.cost),
       coalesce(sum(r.latency_ms), 0), count(r.latency_ms), max(r.created_at)
  FROM public.ai_usage_requests r
 WHERE {BATCH.format(alias="r")}
 GROUP BY 1, 2, 3, 4
"""  # noqa: S608 - built from the constant fragment BATCH

MONTHLY = f"""
INSERT INTO public.ai_usage_monthly
       (user_id, year, month, request_count, success_count, error_count, input_tokens,
        output_tokens, cached_input_tokens, reasoning_tokens, total_tokens, cost, latency_ms_sum,
        latency_count, updated_at)
SELECT r.user_id, extract(year FROM r.created_at AT TIME ZONE 'UTC')::smallint,
       extract(month FROM r.created_at AT TIME ZONE 'UTC')::smallint,
       count(*), count(*) FILTER (WHERE r.status = 'success'),
       count(*) FILTER (WHERE r.status <> 'success'),
       sum(r.input_tokens), sum(r.output_tokens), sum(r.cached_input_tokens),
       sum(r.reasoning_tokens), sum(r.total_tokens), sum(r.cost),
       coalesce(sum(r.latency_ms), 0), count(r.latency_ms), max(r.created_at)
  FROM public.ai_usage_requests r
 WHERE {BATCH.format(alias="r")}
 GROUP BY 1, 2, 3
"""  # noqa: S608 - built from the constant fragment BATCH

# The triggers: message_count +1 and last_activity_at = greatest(last_activity_at, created_at)
# per message (last_activity_at starts at started_at), tool_call_count +1 per tool call, the
# tokens and cost of every usage row that names the session. One aggregate over the three
# kinds of rows, joined to the sessions by primary key: a plan that stays cheap whatever the
# planner believes about tables without statistics. Sessions without any of those rows keep
# what they were loaded with (zeros, and last_activity_at = started_at), as they would.
SESSIONS = f"""
WITH totals AS MATERIALIZED (
    SELECT x.session_id, sum(x.messages) AS messages, max(x.latest) AS latest,
           sum(x.calls) AS calls, sum(x.input_tokens) AS input_tokens,
           sum(x.output_tokens) AS output_tokens, sum(x.total_tokens) AS total_tokens,
           sum(x.cost) AS cost
      FROM (
            SELECT m.session_id, 1 AS messages, m.created_at AS latest, 0 AS calls,
                   0 AS input_tokens, 0 AS output_tokens, 0::bigint AS total_tokens,
                   0::numeric AS cost
              FROM public.agent_messages m
             WHERE {BATCH.format(alias="m")}
            UNION ALL
            SELECT c.session_id, 0, NULL, 1, 0, 0, 0, 0
              FROM public.agent_tool_calls c
             WHERE {BATCH.format(alias="c")}
            UNION ALL
            SELECT r.agent_session_id, 0, NULL, 0, r.input_tokens, r.output_tokens,
                   r.total_tokens, r.cost
              FROM public.ai_usage_requests r
             WHERE {BATCH.format(alias="r")} AND r.agent_session_id IS NOT NULL
           ) x
     GROUP BY x.session_id
)
UPDATE public.agent_sessions AS s
   SET message_count = t.messages,
       last_activity_at = greatest(s.last_activity_at, t.latest),
       tool_call_count = t.calls,
       input_tokens = t.input_tokens,
       output_tokens = t.output_tokens,
       total_tokens = t.total_tokens,
       total_cost = t.cost
  FROM totals t
 WHERE s.id = t.session_id
"""  # noqa: S608 - built from the constant fragment BATCH

QUOTAS = f"""
UPDATE public.user_quotas AS q
   SET tokens_used = x.tokens, cost_used = x.cost, updated_at = greatest(q.updated_at, x.latest)
  FROM (
        SELECT q0.user_id, sum(r.total_tokens) AS tokens, sum(r.cost) AS cost,
               max(r.created_at) AS latest
          FROM public.user_quotas q0
          JOIN public.ai_usage_requests r
            ON r.user_id = q0.user_id
           AND r.created_at >= q0.period_start AND r.created_at < q0.period_end
         WHERE {BATCH.format(alias="q0")}
         GROUP BY q0.user_id
       ) x
 WHERE q.user_id = x.user_id
"""  # noqa: S608 - built from the constant fragment BATCH

# raise_quota_alerts fires once per (user, type, metric, period) when the period's use reaches
# 80 % / 100 % of a limit greater than 0: here, at the first row (in time order) whose running
# total reaches it. Months are pre-selected from ai_usage_monthly (built before) so that only
# the rows of months that cross anything are sorted. Alerts of a period before the quota's
# current one were resolved when the quota rolled over (at that period's end); the mails went
# out right after each alert (notified_at).
ALERTS = f"""
WITH limits AS (
    SELECT s.user_id, t.monthly_token_limit::numeric AS tokens_limit,
           t.monthly_cost_limit AS cost_limit, q.period_start AS current_period
      FROM public.user_subscriptions s
      JOIN public.subscription_tiers t ON t.id = s.tier_id
      JOIN public.user_quotas q ON q.user_id = s.user_id
     WHERE {BATCH.format(alias="s")} AND s.status IN ('trialing', 'active', 'past_due')
), months AS (
    SELECT l.*, b.period_start, b.period_end
      FROM public.ai_usage_monthly mo
      JOIN limits l ON l.user_id = mo.user_id
     CROSS JOIN LATERAL public.quota_period_bounds(
            make_timestamptz(mo.year, mo.month, 1, 0, 0, 0, 'UTC')) b
     WHERE (l.tokens_limit > 0 AND mo.total_tokens * 100 >= l.tokens_limit * 80)
        OR (l.cost_limit > 0 AND mo.cost * 100 >= l.cost_limit * 80)
), running AS (
    SELECT m.user_id, m.period_start, m.period_end, m.current_period, m.tokens_limit,
           m.cost_limit, r.id, r.created_at,
           sum(r.total_tokens) OVER w AS tokens, sum(r.cost) OVER w AS cost
      FROM months m
      JOIN public.ai_usage_requests r
        ON r.user_id = m.user_id AND r.created_at >= m.period_start
       AND r.created_at < m.period_end
    WINDOW w AS (PARTITION BY m.user_id, m.period_start ORDER BY r.created_at, r.id)
), crossings AS (
    SELECT DISTINCT ON (x.user_id, x.period_start, t.alert_type, t.metric)
           x.user_id, t.alert_type, t.metric, t.threshold_percent, x.period_start, t.used,
           t.lim, x.created_at,
           CASE WHEN x.period_start < x.current_period THEN x.period_end END AS resolved_at
      FROM running x
     CROSS JOIN LATERAL (VALUES
            ('warning', 'tokens', 80, x.tokens::numeric, x.tokens_limit),
            ('exceeded', 'tokens', 100, x.tokens::numeric, x.tokens_limit),
            ('warning', 'cost', 80, x.cost, x.cost_limit),
            ('exceeded', 'cost', 100, x.cost, x.cost_limit)
           ) AS t(alert_type, metric, threshold_percent, used, lim)
     WHERE t.lim > 0 AND t.used * 100 >= t.lim * t.threshold_percent
     ORDER BY x.user_id, x.period_start, t.alert_type, t.metric, x.created_at, x.id
)
INSERT INTO public.usage_alerts
       (user_id, alert_type, metric, threshold_percent, period_start, value_at_trigger,
        limit_at_trigger, triggered_at, notified_at, resolved_at)
SELECT c.user_id, c.alert_type, c.metric, c.threshold_percent, c.period_start, c.used, c.lim,
       c.created_at, least(c.created_at + interval '3 seconds', %(now)s), c.resolved_at
  FROM crossings c
"""  # noqa: S608 - built from the constant fragment BATCH

# (name, statement, the table whose rows it inserts, or None for an update), in this order:
# the alerts read the monthly roll-up.
STEPS = (
    ("daily roll-up", DAILY, "ai_usage_daily"),
    ("monthly roll-up", MONTHLY, "ai_usage_monthly"),
    ("session totals", SESSIONS, None),
    ("quota use", QUOTAS, None),
    ("quota alerts", ALERTS, "usage_alerts"),
)

ANALYZE = (
    "users", "user_profiles", "user_quotas", "user_subscriptions", "payment_history",
    "access_tokens", "audit_logs", "audit_logs_archive", "ai_usage_requests",
    "ai_usage_request_keys", "ai_usage_daily", "ai_usage_monthly", "agent_sessions",
    "agent_messages", "agent_tool_calls", "agent_feedback", "usage_alerts",
)  # fmt: skip


def roll_up(
    cursor,
    user_ids: list[int],
    now: datetime,
    rows: dict[str, int],
    seconds: dict[str, float],
    clock,
) -> None:
    """Run every step for these users (whose raw rows are all loaded); add the rows each step
    inserted to ``rows`` and its time to ``seconds``."""
    params = {"ids": user_ids, "lo": min(user_ids), "hi": max(user_ids), "now": now}
    for name, statement, table in STEPS:
        started = clock()
        cursor.execute(statement, params)
        seconds[name] = seconds.get(name, 0.0) + clock() - started
        if table is not None:
            rows[table] = rows.get(table, 0) + cursor.rowcount
