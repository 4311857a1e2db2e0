"""/metrics: guarded by a token or an allow-list (a 404 otherwise), request and database
instruments labelled by route, cache timings, and the seed's key metrics as gauges."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import AuditLog
from billing.models import UserQuota
from usage.models import AIUsageDaily, AIUsageMonthly
from witchcraft.operations.metrics import access
from witchcraft.testing import factories
from witchcraft.testing.backups import backup_run, healthy_backups, wal_summary

TOKEN = "a-scrape-token-of-some-length"
# One of each of the seed's "Key Metrics to Track".
SEED_METRICS = (
    "witchcraft_active_users",  # active users (daily/monthly)
    "witchcraft_ai_requests_per_second",  # AI requests per second (1m, 5m, 60m)
    "witchcraft_ai_requests_recent",
    "witchcraft_ai_response_time_seconds_average",  # average response time
    "witchcraft_quota_users",  # quota usage
    "witchcraft_ai_failed_request_ratio",  # failed requests rate
    "witchcraft_database_size_bytes",  # database size growth
    "witchcraft_database_connections",  # connection pool usage
    "witchcraft_database_connection_usage_ratio",
    "witchcraft_failed_logins_last_minute",
)


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return TOKEN


def _scrape(client, token=TOKEN, **extra):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def _samples(response) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from the exposition text."""
    assert response.status_code == 200, response.content[:300]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def _requests(method, route, status):
    value = REGISTRY.get_sample_value(
        "witchcraft_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0


# --- who may scrape ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_nothing_configured_is_a_404_like_any_unknown_page(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    response = client.get("/metrics")
    unknown = client.get("/no-such-page")
    assert response.status_code == unknown.status_code == 404
    assert response.content.replace(b"/metrics", b"") == unknown.content.replace(
        b"/no-such-page", b""
    )
    # No token configured: an empty bearer token does not match it.
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    # Nor does another method give it away (a 405, or a CSRF 403, would say the path exists).
    assert Client(enforce_csrf_checks=True).post("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_wrong_or_missing_token_is_a_404(client, token):
    assert client.get("/metrics").status_code == 404
    assert _scrape(client, token="not-the-token").status_code == 404
    assert _scrape(client, token=token + "x").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token}").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=token).status_code == 404


@pytest.mark.django_db
def test_the_right_token_gets_the_text_format_with_the_seed_metrics(client, token):
    response = _scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"]
    names = {name for name, _ in _samples(response)}
    for metric in SEED_METRICS:
        assert metric in names, metric
    assert _value(_samples(_scrape(client)), "witchcraft_key_metrics_up") == 1
    # The scheme is case-insensitive, as HTTP says.
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200
    # Read-only: with the token, other methods are told so.
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


@pytest.mark.django_db
def test_an_allow_listed_address_needs_no_token(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.9.9.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.8").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="11.1.2.3").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="").status_code == 404


def test_a_wrong_allow_list_entry_is_a_configuration_error(settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "intranet"]
    with pytest.raises(ImproperlyConfigured, match="'intranet' is not an IP address"):
        access.allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))


@pytest.mark.django_db
def test_metrics_are_not_redirected_to_https(client, token, settings):
    """Prometheus scrapes over plain HTTP inside the network, as load balancers probe."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/auth/login/").status_code == 301
    assert _scrape(client).status_code == 200


@pytest.mark.django_db
def test_the_key_metrics_need_no_request_transaction(client, token):
    """/metrics is exempt from the row-level-security middleware: its totals cross users and
    are read in their own service context, the only database identity the scrape sets."""
    from witchcraft.platform.rls import RowLevelSecurityMiddleware

    assert "/metrics" in RowLevelSecurityMiddleware.EXEMPT_PATHS
    with CaptureQueriesContext(connection) as queries:
        assert _scrape(client).status_code == 200
    identities = [q["sql"] for q in queries.captured_queries if "SET LOCAL ROLE" in q["sql"]]
    assert len(identities) == 1
    assert "SET LOCAL app.is_service = 'true'" in identities[0]


# --- request and database instruments -----------------------------------------------------


@pytest.mark.django_db
def test_the_request_counter_is_labelled_by_route_not_path(client, token):
    member = factories.UserFactory()
    client.force_login(member)
    before = _requests("GET", "agents:me_session", "4xx")
    queries_before = (
        REGISTRY.get_sample_value(
            "witchcraft_db_queries_per_request_count", {"route": "agents:me_session"}
        )
        or 0
    )
    assert client.get("/me/sessions/123/").status_code == 404  # not one of the member's
    assert _requests("GET", "agents:me_session", "4xx") == before + 1
    assert (
        REGISTRY.get_sample_value(
            "witchcraft_db_queries_per_request_count", {"route": "agents:me_session"}
        )
        == queries_before + 1
    )
    samples = _samples(_scrape(client))
    assert _value(
        samples,
        "witchcraft_http_requests_total",
        method="GET",
        route="agents:me_session",
        status="4xx",
    ) == (before + 1)
    assert not any("123" in dict(labels).get("route", "") for _, labels in samples)
    assert not any("/me/sessions" in dict(labels).get("route", "") for _, labels in samples)
    # The request ran queries (the session, the user, the lookup), and they were timed.
    assert _value(samples, "witchcraft_db_queries_per_request_sum", route="agents:me_session") > 0
    assert (
        _value(samples, "witchcraft_db_query_seconds_per_request_sum", route="agents:me_session")
        > 0
    )
    assert (
        _value(
            samples,
            "witchcraft_http_request_duration_seconds_count",
            method="GET",
            route="agents:me_session",
            status="4xx",
        )
        >= 1
    )


@pytest.mark.django_db
def test_unrouted_requests_and_odd_methods_share_a_few_labels(client):
    before = {
        key: _requests(*key)
        for key in (
            ("GET", "unmatched", "4xx"),
            ("GET", "static", "4xx"),
            ("other", "healthz", "4xx"),
        )
    }
    client.get("/no/such/page/98765")
    client.get("/static/no-such-file-98765.css")
    client.generic("BREW", "/healthz")  # answered 405 by the view
    for key, count in before.items():
        assert _requests(*key) == count + 1, key


@pytest.mark.django_db
def test_a_server_error_is_counted_as_5xx(client, token, monkeypatch):
    from witchcraft.operations.metrics import key_metrics

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(key_metrics, "read", broken)
    client.raise_request_exception = False
    before = _requests("GET", "metrics", "5xx")
    assert _scrape(client).status_code == 500
    assert _requests("GET", "metrics", "5xx") == before + 1


# --- cache instruments ----------------------------------------------------------------------


@pytest.fixture
def measured_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "witchcraft.operations.metrics.cache.LocMemCache",
            "LOCATION": "metrics-test",
        }
    }
    cache = caches["default"]
    cache.clear()
    return cache


def _cache_value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.mark.django_db
def test_cache_operations_are_timed_and_gets_counted(measured_cache):
    hits, misses = (_cache_value("witchcraft_cache_gets_total", result=r) for r in ("hit", "miss"))
    sets, gets, incrs = (
        _cache_value("witchcraft_cache_operation_duration_seconds_count", operation=op)
        for op in ("set", "get", "incr")
    )
    assert measured_cache.get("absent", "fallback") == "fallback"
    measured_cache.set("present", 41)
    assert measured_cache.incr("present") == 42
    assert measured_cache.get("present") == 42
    assert measured_cache.get("stored-none", "x") == "x"
    measured_cache.set("stored-none", None)
    assert measured_cache.get("stored-none", "x") is None  # a stored None is a hit
    assert _cache_value("witchcraft_cache_gets_total", result="hit") == hits + 2
    assert _cache_value("witchcraft_cache_gets_total", result="miss") == misses + 2
    assert (
        _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="set")
        == sets + 2
    )
    assert (
        _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="get")
        == gets + 4
    )
    assert (
        _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="incr")
        == incrs + 1
    )


@pytest.mark.django_db
def test_an_operation_made_of_others_is_counted_once(measured_cache):
    gets = _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="get")
    many = _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="get_many")
    measured_cache.set_many({"a": 1, "b": 2})
    assert measured_cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert measured_cache.get_or_set("d", 4) == 4
    assert (
        _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="get_many")
        == many + 1
    )
    assert (
        _cache_value("witchcraft_cache_operation_duration_seconds_count", operation="get") == gets
    )


# --- the seed's key metrics ------------------------------------------------------------------


def _daily(*, requests: int, errors: int, latency_ms: int):
    model = factories.catalog_model()
    user = factories.UserFactory()
    now = datetime.now(UTC)
    AIUsageDaily.objects.create(
        user=user,
        usage_date=now.date(),
        provider_id=model.provider_id,
        model=model,
        request_count=requests,
        success_count=requests - errors,
        error_count=errors,
        latency_ms_sum=latency_ms * requests,
        latency_count=requests,
    )
    AIUsageMonthly.objects.create(
        user=user,
        year=now.year,
        month=now.month,
        request_count=requests,
        success_count=requests - errors,
        error_count=errors,
    )


def _quota(ratio: str):
    quota = factories.quota_for(factories.UserFactory())
    UserQuota.objects.filter(pk=quota.pk).update(
        tokens_used=int(quota.tokens_limit * Decimal(ratio))
    )


@pytest.mark.django_db
def test_the_gauges_match_the_data(client, token, settings):
    _daily(requests=90, errors=3, latency_ms=100)
    _daily(requests=10, errors=3, latency_ms=1000)
    _quota("0.85")
    _quota("1.0")
    _quota("1.3")
    _quota("0.2")
    someone = factories.UserFactory()
    AuditLog.objects.bulk_create(
        AuditLog(user=someone, event_type="login_failed", severity="warning") for _ in range(7)
    )
    AuditLog.objects.create(user=someone, event_type="login_succeeded")
    settings.DATABASE_CAPACITY_BYTES = 8 * 1024**3
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_key_metrics_up") == 1
    assert _value(samples, "witchcraft_active_users", period="day") == 2
    assert _value(samples, "witchcraft_active_users", period="month") == 2
    assert _value(samples, "witchcraft_ai_requests_today") == 100
    assert _value(samples, "witchcraft_ai_unsuccessful_requests_today") == 6
    assert _value(samples, "witchcraft_ai_response_time_seconds_average") == pytest.approx(0.19)
    assert _value(samples, "witchcraft_quota_users", level="warning") == 3
    assert _value(samples, "witchcraft_quota_users", level="exceeded") == 2
    assert _value(samples, "witchcraft_quotas") == 4
    assert _value(samples, "witchcraft_quota_usage_ratio_max") == pytest.approx(1.3)
    assert _value(samples, "witchcraft_failed_logins_last_minute") == 7
    assert _value(samples, "witchcraft_database_size_bytes") > 1024**2
    assert _value(samples, "witchcraft_database_capacity_bytes") == 8 * 1024**3
    assert _value(samples, "witchcraft_database_capacity_usage_ratio") == pytest.approx(
        _value(samples, "witchcraft_database_size_bytes") / (8 * 1024**3)
    )
    total = _value(samples, "witchcraft_database_connections", state="total")
    assert total >= 1
    assert _value(samples, "witchcraft_database_connections_limit", limit="configured") == 100
    assert _value(samples, "witchcraft_database_connections_limit", limit="server") >= 1
    assert _value(samples, "witchcraft_database_connection_usage_ratio") == total / 100
    assert _value(samples, "witchcraft_database_pool_size") == 0  # not pooling in tests


@pytest.mark.django_db
def test_an_empty_day_has_no_average_and_no_errors(client, token):
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_ai_requests_today") == 0
    for window in ("1m", "5m", "60m"):
        assert _value(samples, "witchcraft_ai_failed_request_ratio", window=window) == 0
        assert _value(samples, "witchcraft_ai_requests_per_second", window=window) == 0
    average = _value(samples, "witchcraft_ai_response_time_seconds_average")
    assert average != average  # NaN: no request yet, not a zero-second average


NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_window_gauges_count_by_status(client, token, monkeypatch):
    from witchcraft.operations import monitoring

    monkeypatch.setattr(monitoring, "clock", lambda: NOW)
    model = factories.catalog_model()
    user = factories.UserFactory()
    for status, count, seconds_ago in (
        ("success", 18, 30),
        ("error", 1, 30),
        ("timeout", 1, 200),
        ("cancelled", 4, 30),
        ("rejected", 5, 30),
        ("error", 7, 1200),
        ("error", 9, 3700),
    ):
        for _ in range(count):
            factories.usage_request(
                user=user,
                model=model,
                status=status,
                created_at=NOW - timedelta(seconds=seconds_ago),
            )
    samples = _samples(_scrape(client))
    recent = {
        (window, status): _value(
            samples, "witchcraft_ai_requests_recent", window=window, status=status
        )
        for window in ("1m", "5m", "60m")
        for status in ("success", "error", "timeout", "cancelled", "rejected")
    }
    assert recent[("1m", "success")] == 18 and recent[("1m", "timeout")] == 0
    assert recent[("5m", "timeout")] == 1 and recent[("5m", "error")] == 1
    assert recent[("60m", "error")] == 8
    assert recent[("60m", "cancelled")] == 4 and recent[("60m", "rejected")] == 5
    ratio = {
        w: _value(samples, "witchcraft_ai_failed_request_ratio", window=w)
        for w in ("1m", "5m", "60m")
    }
    assert ratio == {"1m": 1 / 19, "5m": 2 / 20, "60m": 9 / 27}
    assert _value(samples, "witchcraft_ai_requests_per_second", window="1m") == 28 / 60
    assert _value(samples, "witchcraft_ai_requests_per_second", window="60m") == 36 / 3600


@pytest.mark.django_db
def test_a_gauge_for_each_seed_alert(client, token, settings):
    """Quota (warning, exceeded), failed logins, error rate, database size, slow queries."""
    settings.DATABASE_CAPACITY_BYTES = 1024
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_quota_usage_ratio_max") is not None
    assert _value(samples, "witchcraft_quota_users", level="exceeded") is not None
    assert _value(samples, "witchcraft_failed_logins_last_minute") is not None
    assert _value(samples, "witchcraft_ai_failed_request_ratio", window="5m") is not None
    assert _value(samples, "witchcraft_database_capacity_usage_ratio") > 0.8
    assert _value(samples, "witchcraft_slow_queries_running") == 0
    assert _value(samples, "witchcraft_slow_statements") is not None
    assert _value(samples, "witchcraft_slow_statement_calls") is not None
    states = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "witchcraft_pg_stat_statements_available"
    }
    assert len(states) == 1 and set(states) <= {"ok", "not_loaded", "absent"}
    assert next(iter(states.values())) == (1 if "ok" in states else 0)


@pytest.mark.django_db
def test_a_scrape_is_cheap_and_never_scans_the_raw_usage_rows(client, token, settings):
    """The usage rows are read only through monitoring_request_windows() (the last hour, by
    the created_at index: test_dashboard_monitoring.py checks its plan)."""
    settings.PITR_ENABLED = True
    healthy_backups()
    for minutes in range(1, 30):
        backup_run("backup_wal", ago=timedelta(minutes=minutes), summary=wal_summary())
    model = factories.catalog_model()
    for _ in range(3):
        factories.usage_request(user=factories.UserFactory(), model=model)
    with CaptureQueriesContext(connection) as queries:
        response = _scrape(client)
    assert response.status_code == 200
    # The context (savepoints, role, settings) and eleven reads (the backups one), whatever the
    # traffic was.
    assert len(queries) <= 23, [q["sql"] for q in queries.captured_queries]
    sql = " ".join(query["sql"] for query in queries.captured_queries).lower()
    assert "monitoring_request_windows" in sql
    assert "ai_usage_requests" not in sql
    assert "agent_messages" not in sql


def test_the_counters_still_answer_when_the_database_does_not(client, token, django_db_blocker):
    """A scrape while the database is down: request counters, and key_metrics_up 0."""
    with django_db_blocker.unblock():
        connection.close()
        saved = dict(connection.settings_dict)
        connection.settings_dict.update(HOST="127.0.0.1", PORT=1, EMBEDDED=False)
        try:
            response = _scrape(client)
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
    samples = _samples(response)
    assert _value(samples, "witchcraft_key_metrics_up") == 0
    assert _value(samples, "witchcraft_active_users", period="day") is None
    assert any(name == "witchcraft_http_requests_total" for name, _ in samples)


# --- backups (point-in-time recovery) ---------------------------------------------------------

BACKUP_FIGURES = (
    "witchcraft_backup_base_age_seconds",
    "witchcraft_backup_base_backups",
    "witchcraft_backup_wal_behind_seconds",
    "witchcraft_backup_wal_lag_bytes",
    "witchcraft_backup_recovery_window_start_timestamp_seconds",
    "witchcraft_backup_recovery_window_end_timestamp_seconds",
    "witchcraft_backup_last_wal_archived_timestamp_seconds",
    "witchcraft_backup_drill_last_success_timestamp_seconds",
    "witchcraft_backup_drill_last_ok",
)


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.django_db
def test_backups_off_serve_only_enabled_and_stale(client, token, settings):
    settings.PITR_ENABLED = False
    healthy_backups()
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_backup_enabled") == 0
    assert _value(samples, "witchcraft_backup_stale") == 0
    for name in BACKUP_FIGURES:
        assert _value(samples, name) is None, name


@pytest.mark.django_db
def test_the_backup_gauges_match_the_last_runs(client, token, settings):
    settings.PITR_ENABLED = True
    runs = healthy_backups()
    summary = runs["backup_wal"].summary
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_backup_enabled") == 1
    assert _value(samples, "witchcraft_backup_stale") == 0
    assert 3 * 3600 <= _value(samples, "witchcraft_backup_base_age_seconds") < 3 * 3600 + 120
    assert _value(samples, "witchcraft_backup_base_backups") == 7
    assert 35 <= _value(samples, "witchcraft_backup_wal_behind_seconds") < 120
    assert _value(samples, "witchcraft_backup_wal_lag_bytes") == 2048
    assert _value(
        samples, "witchcraft_backup_recovery_window_start_timestamp_seconds"
    ) == pytest.approx(_ts(summary["oldest_restorable"]))
    assert _value(
        samples, "witchcraft_backup_recovery_window_end_timestamp_seconds"
    ) == pytest.approx(_ts(summary["safe_through"]))
    assert _value(
        samples, "witchcraft_backup_last_wal_archived_timestamp_seconds"
    ) == pytest.approx(_ts(summary["last_wal_archived_at"]))
    assert _value(
        samples, "witchcraft_backup_drill_last_success_timestamp_seconds"
    ) == pytest.approx(runs["backup_drill"].finished_at.timestamp())
    assert _value(samples, "witchcraft_backup_drill_last_ok") == 1


@pytest.mark.django_db
def test_a_stale_base_backup_and_a_failed_drill(client, token, settings):
    settings.PITR_ENABLED = True
    settings.BACKUP_STALE_HOURS = 26
    passed = backup_run("backup_drill", ago=timedelta(days=8), summary={"verified": True})
    backup_run("backup_drill", ago=timedelta(days=1), status="failed", error="restore failed")
    backup_run(
        "backup_wal", ago=timedelta(seconds=30), summary=wal_summary(base_age=timedelta(hours=27))
    )
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_backup_stale") == 1
    assert _value(samples, "witchcraft_backup_base_age_seconds") > 26 * 3600
    assert _value(samples, "witchcraft_backup_drill_last_ok") == 0
    assert _value(
        samples, "witchcraft_backup_drill_last_success_timestamp_seconds"
    ) == pytest.approx(passed.finished_at.timestamp())


@pytest.mark.django_db
def test_unknown_backup_figures_are_left_out_not_made_up(client, token, settings):
    """PITR on, but no WAL run and no drill yet: stale, and no gauge for what is unknown."""
    settings.PITR_ENABLED = True
    samples = _samples(_scrape(client))
    assert _value(samples, "witchcraft_backup_enabled") == 1
    assert _value(samples, "witchcraft_backup_stale") == 1
    for name in BACKUP_FIGURES:
        assert _value(samples, name) is None, name
