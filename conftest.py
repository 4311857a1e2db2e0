"""Fixtures shared by every app's tests (factories live in witchcraft/testing/factories.py)."""

import pytest

from witchcraft.testing import factories


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many users; production hashing (Argon2id, bcrypt) is tested on its own."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _staff_second_factor_off(settings):
    """Tests do not depend on .env: staff need no second factor unless a test turns it on."""
    settings.STAFF_2FA_REQUIRED = False


@pytest.fixture(autouse=True)
def _point_in_time_recovery_off(settings):
    """PITR_ENABLED defaults to on with the embedded server and off with DATABASE_URL: tests do
    not depend on which one runs them (the backups' state on /healthz, /metrics and the
    monitoring page would differ). A test of point-in-time recovery turns it on."""
    settings.PITR_ENABLED = False


@pytest.fixture(autouse=True)
def _mail_in_the_foreground(settings):
    """Tests read mail.outbox right after the request (test transactions never commit)."""
    settings.MAIL_IN_BACKGROUND = False


@pytest.fixture(autouse=True)
def _empty_cache():
    """Rate-limit counters, plans' rates and the catalog live in the cache: each test starts
    with none."""
    from django.core.cache import cache

    from billing.selectors import public_tiers_snapshot, requests_per_minute_forget_all_local
    from usage.catalog import snapshot as catalog_snapshot

    cache.clear()
    requests_per_minute_forget_all_local()
    catalog_snapshot.forget_local()
    public_tiers_snapshot.forget_local()


@pytest.fixture(scope="session")
def live_server(django_db_setup, django_db_blocker, live_server):
    """pytest-django's live server, stopped before the test database is dropped.

    Its request threads may still hold a connection when the session ends (a browser's
    keep-alive); those are ended so that the test database can be dropped.
    """
    yield live_server
    live_server.stop()
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def collected_static():
    """collectstatic with DEBUG off, once, for the tests that serve with gunicorn (a fresh
    clone has no manifest, and a page that names a static file would fail without one)."""
    from witchcraft.testing.servers import collect_static

    return collect_static()


@pytest.fixture
def page(live_server, monkeypatch):
    """A Chromium page for browser tests; skipped (saying why) where Chromium is missing.

    Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM
    calls from the test body unless told this thread is allowed them.
    """
    from witchcraft.testing import browser

    if not browser.chromium_available():
        pytest.skip(f"no Chromium at {browser.CHROMIUM}: install Debian's chromium package")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with browser.chromium_page() as chromium_page:
        yield chromium_page


@pytest.fixture
def self_reporting(settings):
    """A deployment where users bring their own provider keys (USAGE_SELF_REPORTING): their
    own tokens reserve and record. Modules that test the recording logic through the user's
    token use it; the default deployment, where only a service credential records, is tested
    in usage/tests/test_api_reservations.py and accounts/tests/test_scopes.py."""
    settings.USAGE_SELF_REPORTING = True


@pytest.fixture
def user(db):
    return factories.UserFactory()


@pytest.fixture
def catalog_model(db):
    """A priced model from the catalog the migrations load."""
    return factories.catalog_model()
