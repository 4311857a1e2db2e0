"""The client's address (TRUSTED_PROXIES, X-Forwarded-For) and the request ids a client may
give (X-Request-ID), through real requests on the real database.

An audit row says who asked: a failed sign-in for an unknown address writes ``login_failed``
with the request's ``app.ip`` and ``app.request_id``, so each case below is one POST and one
row read back.
"""

import logging

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from accounts import audit
from accounts.models import AuditLog
from witchcraft.operations.metrics import access
from witchcraft.platform import clients, rls
from witchcraft.testing.servers import free_port, start_gunicorn, stop

from . import test_serve
from .test_settings import _python

pytestmark = pytest.mark.django_db
PROXY = "127.0.0.1"
CLIENT = "203.0.113.9"


@pytest.fixture
def trusted(settings):
    """Trust these proxies for the test: ``trusted("127.0.0.1, 10.0.0.0/8")``."""

    def trust(text: str) -> clients.TrustedProxies:
        settings.TRUSTED_PROXIES = clients.trusted_proxies(text)
        return settings.TRUSTED_PROXIES

    return trust


def _failed_sign_in(client, **meta) -> tuple:
    """POST a wrong password for an unknown address; return the response and its audit row."""
    before = set(AuditLog.objects.values_list("pk", flat=True))
    response = client.post(
        reverse("accounts:login"), {"email": "nobody@example.com", "password": "wrong"}, **meta
    )
    assert response.status_code == 200
    (row,) = AuditLog.objects.exclude(pk__in=before).filter(event_type=audit.LOGIN_FAILED)
    return response, row


def _seen_address(client, remote, forwarded=None) -> str | None:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return _failed_sign_in(client, **meta)[1].ip


# --- whose X-Forwarded-For is believed ------------------------------------------------------------


def test_with_no_trusted_proxy_x_forwarded_for_is_ignored(client):
    assert not clients.trusted_proxies("")  # the default: trust nobody
    assert _seen_address(client, PROXY, CLIENT) == PROXY
    assert _seen_address(client, "198.51.100.4", "10.0.0.1") == "198.51.100.4"


def test_a_spoofed_header_from_a_client_that_is_not_a_proxy_is_ignored(client, trusted):
    trusted("127.0.0.1")
    assert _seen_address(client, "198.51.100.4", "127.0.0.1") == "198.51.100.4"
    assert _seen_address(client, "198.51.100.4", f"{CLIENT}, 127.0.0.1") == "198.51.100.4"


def test_through_a_trusted_proxy_the_forwarded_client_is_used(client, trusted):
    trusted("127.0.0.1, ::1")
    assert _seen_address(client, PROXY, CLIENT) == CLIENT
    assert _seen_address(client, "::1", "2001:db8::7") == "2001:db8::7"
    # A dual-stack socket reports the proxy as IPv4-mapped IPv6; it is still the proxy.
    assert _seen_address(client, "::ffff:127.0.0.1", CLIENT) == CLIENT
    # No header: the proxy itself asked (a health probe, a cron job on the machine).
    assert _seen_address(client, PROXY) == PROXY


def test_a_chain_of_proxies_is_walked_from_the_right(client, trusted):
    trusted("127.0.0.1, 10.0.0.0/8")
    # The load balancer (10.0.0.5) and an inner proxy (10.1.0.2) both appended what they saw.
    assert _seen_address(client, PROXY, f"{CLIENT}, 10.0.0.5, 10.1.0.2") == CLIENT
    # What the client wrote to the left of its own address is ignored ...
    assert _seen_address(client, PROXY, f"192.0.2.66, 10.9.9.9, {CLIENT}, 10.0.0.5") == CLIENT
    # ... and a client inside a trusted network is only believed as far as it is a proxy:
    # every hop is trusted, so the leftmost one is as far as anything is known.
    assert _seen_address(client, PROXY, "10.2.2.2, 10.0.0.5") == "10.2.2.2"
    # Several X-Forwarded-For headers arrive joined by commas (gunicorn, WSGI).
    assert _seen_address(client, PROXY, f"{CLIENT},10.0.0.5") == CLIENT


@pytest.mark.parametrize(
    ("forwarded", "seen"),
    [
        ("garbage", PROXY),
        (f"{CLIENT}, garbage", PROXY),  # never past garbage
        ("garbage, 10.0.0.5", "10.0.0.5"),  # the last trusted hop
        (f"{CLIENT}, , 10.0.0.5", "10.0.0.5"),  # an empty entry is garbage too
        (f"{CLIENT}\x1b[31m, 10.0.0.5", "10.0.0.5"),
        ("fe80::1%eth0", PROXY),  # a zone: no inet for it
        ("203.0.113.9/24", PROXY),
        ("999.1.1.1", PROXY),
        ("1" * 5000, PROXY),
        (",".join(["10.0.0.5"] * 500), "10.0.0.5"),
        ("", PROXY),
        # Ports some proxies add are not garbage.
        ("203.0.113.9:51234", CLIENT),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("::ffff:203.0.113.9", CLIENT),
    ],
)
def test_malformed_entries_fall_back_to_the_last_trusted_hop(client, trusted, forwarded, seen):
    trusted("127.0.0.1, 10.0.0.0/8")
    assert _seen_address(client, PROXY, forwarded) == seen


def test_a_remote_address_that_is_not_one_is_nobody(client, trusted):
    trusted("127.0.0.1")
    assert _seen_address(client, "not-an-address", CLIENT) is None


def test_a_unix_socket_is_trusted_only_when_named(client, trusted):
    """gunicorn on BIND=unix:... gives an empty REMOTE_ADDR."""
    assert _seen_address(client, "", CLIENT) is None
    trusted("unix")
    assert _seen_address(client, "", CLIENT) == CLIENT
    assert _seen_address(client, "", "garbage") is None


def _proxy_warnings(client, caplog, monkeypatch, *requests) -> list[str]:
    monkeypatch.setattr(rls, "_warned", False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="witchcraft.platform.rls"):
        for remote, forwarded in requests:
            _seen_address(client, remote, forwarded)
    return [r.getMessage() for r in caplog.records if r.name == "witchcraft.platform.rls"]


def test_an_ignored_header_from_a_local_proxy_is_logged_once(client, caplog, monkeypatch, trusted):
    (warning,) = _proxy_warnings(client, caplog, monkeypatch, (PROXY, CLIENT), (PROXY, CLIENT))
    assert "X-Forwarded-For from 127.0.0.1 ignored" in warning
    assert "TRUSTED_PROXIES" in warning
    (warning,) = _proxy_warnings(client, caplog, monkeypatch, ("", CLIENT))
    assert "from a unix socket ignored" in warning
    # Not for a client elsewhere (its header is its own claim), nor for a trusted proxy.
    assert not _proxy_warnings(client, caplog, monkeypatch, ("198.51.100.4", CLIENT))
    trusted("127.0.0.1, unix")
    assert not _proxy_warnings(client, caplog, monkeypatch, (PROXY, CLIENT), ("", CLIENT))


# --- TRUSTED_PROXIES itself -----------------------------------------------------------------------


def test_the_setting_takes_addresses_networks_and_unix():
    proxies = clients.trusted_proxies(" 127.0.0.1 ,::1, 10.0.0.0/8,,UNIX ")
    assert [str(network) for network in proxies.networks] == [
        "127.0.0.1/32",
        "::1/128",
        "10.0.0.0/8",
    ]
    assert proxies.unix_socket
    # gunicorn asks "peer in forwarded_allow_ips" with a string.
    assert "10.200.1.1" in proxies
    assert "::ffff:10.200.1.1" in proxies
    assert "11.0.0.1" not in proxies
    assert "*" not in proxies


@pytest.mark.parametrize(
    "value", ["10.0.0.1/8", "localhost", "*", "127.0.0.1 10.0.0.1", "::ffff:127.0.0.1"]
)
def test_a_wrong_entry_refuses_to_start_naming_it(value):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        clients.trusted_proxies(value)
    done = _python("import django; django.setup()", TRUSTED_PROXIES=value)
    assert done.returncode != 0
    assert ImproperlyConfigured.__name__ in done.stderr
    assert f"TRUSTED_PROXIES: {value!r}" in done.stderr


def test_the_setting_is_read_from_the_environment():
    done = _python(
        "import django; django.setup(); from django.conf import settings; "
        "print([str(n) for n in settings.TRUSTED_PROXIES.networks])",
        TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['127.0.0.1/32', '10.0.0.0/8']"


# --- /metrics behind a local proxy ----------------------------------------------------------------


def test_metrics_through_a_local_proxy_are_refused_unless_the_real_client_is_allowed(
    client, settings, trusted
):
    settings.METRICS_TOKEN = ""
    trusted("127.0.0.1")
    # The README's old advice: 127.0.0.1 in the list. Through the proxy that is nobody now.
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "10.20.0.0/16"]
    access.allowed_networks.cache_clear()
    assert client.get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT).status_code == 404
    allowed = client.get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.20.1.1")
    assert allowed.status_code == 200
    # Prometheus on the machine itself, not through the proxy.
    assert client.get("/metrics", REMOTE_ADDR=PROXY).status_code == 200
    # A client reaching the site directly cannot claim an allowed address.
    spoofed = client.get("/metrics", REMOTE_ADDR=CLIENT, HTTP_X_FORWARDED_FOR="10.20.1.1")
    assert spoofed.status_code == 404


# --- X-Request-ID ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "job-abc",
        "JOB-abc",
        "metrics-scrape",
        "evil\x1b[2J\x1b[31mred",
        "line\nbreak",
        "a" * 65,
        "has spaces",
        " padded",
        "semi;colon",
        "ünïcode",
        "",
    ],
)
def test_an_implausible_or_reserved_request_id_is_replaced(client, given):
    response, row = _failed_sign_in(client, HTTP_X_REQUEST_ID=given)
    assert row.request_id != given
    assert len(row.request_id) == 32
    int(row.request_id, 16)  # uuid hex
    assert response["X-Request-ID"] == row.request_id


@pytest.mark.parametrize("given", ["client-req_1.2", "a" * 64, "0f8fad5b-d9cb-469f", "X"])
def test_a_plausible_request_id_is_kept_and_stored(client, given):
    response, row = _failed_sign_in(client, HTTP_X_REQUEST_ID=given)
    assert row.request_id == given
    assert response["X-Request-ID"] == given


def test_each_request_without_an_id_gets_its_own(client):
    first, first_row = _failed_sign_in(client)
    second, second_row = _failed_sign_in(client, HTTP_X_REQUEST_ID="job-1234")
    assert first_row.request_id != second_row.request_id
    assert first["X-Request-ID"] == first_row.request_id
    assert second["X-Request-ID"] == second_row.request_id


# --- the database's backstop ----------------------------------------------------------------------


def test_the_database_refuses_an_implausible_request_id_in_an_audit_row():
    with (
        pytest.raises(IntegrityError, match="audit_logs_request_id_plausible"),
        transaction.atomic(),
        rls.service_context(request_id="has space\x1b[2J"),
    ):
        audit.audit_event(audit.LOGIN_FAILED, details={"email": "x@example.com"})
    # The site's own ids pass (a job's, a uuid's hex).
    for own in ("job-0123456789ab", "0123456789abcdef0123456789abcdef"):
        with transaction.atomic(), rls.service_context(request_id=own):
            audit.audit_event(audit.LOGIN_FAILED, details={"email": "x@example.com"})
        assert AuditLog.objects.filter(request_id=own).count() == 1


def test_the_constraint_is_validated_on_a_clean_trail():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = %s",
            ["audit_logs_request_id_plausible"],
        )
        assert cursor.fetchone() == (True,)


# --- gunicorn trusts the same proxies -------------------------------------------------------------

SHOW_GUNICORN = (
    "import runpy; c = runpy.run_path('witchcraft/gunicorn.conf.py'); "
    "print(repr(c['forwarded_allow_ips']))"
)


def test_gunicorn_reads_the_same_setting_and_refuses_its_own():
    trusted = test_serve._python(["-c", SHOW_GUNICORN], TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8")
    assert trusted.returncode == 0, trusted.stderr
    # What gunicorn checks when it loads the config: the single addresses (the networks join
    # in each worker, below).
    assert trusted.stdout.strip().splitlines()[-1] == "'127.0.0.1'"
    nobody = test_serve._python(["-c", SHOW_GUNICORN])
    assert nobody.stdout.strip().splitlines()[-1] == "''"
    wrong = test_serve._python(["-c", SHOW_GUNICORN], TRUSTED_PROXIES="10.0.0.1/8")
    assert wrong.returncode != 0
    assert "TRUSTED_PROXIES: '10.0.0.1/8'" in wrong.stderr
    own = test_serve._python(["-c", SHOW_GUNICORN], FORWARDED_ALLOW_IPS="*")
    assert own.returncode != 0
    assert "set TRUSTED_PROXIES" in own.stderr or "TRUSTED_PROXIES instead" in own.stderr


def _gunicorn(tmp_path, database, **changes):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = test_serve._env(
        DEBUG="false",
        SECRET_KEY="a-real-key-for-this-test-" + "x" * 40,
        **database,
        ALLOWED_HOSTS="127.0.0.1",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        WITCHCRAFT_DATA_DIR=str(tmp_path / "data"),
        **changes,
    )
    process = start_gunicorn(env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    test_serve._wait_until_up(f"{base}/healthz", process, log)
    return base, process


@pytest.mark.parametrize("proxies", ["", "127.0.0.0/8"])
def test_gunicorn_and_the_site_trust_the_same_proxies(
    django_db_setup, django_db_blocker, tmp_path, proxies
):
    """Real gunicorn, the proxy on 127.0.0.1: named as a network (which gunicorn 23 cannot
    compare by itself), it is believed for X-Forwarded-Proto by gunicorn and for
    X-Forwarded-For by the site; not named, for neither."""
    with django_db_blocker.unblock():
        database = test_serve._database_env()
    base, process = _gunicorn(
        tmp_path, database, TRUSTED_PROXIES=proxies, METRICS_ALLOWED_IPS="10.20.0.0/16"
    )
    try:
        https = requests.get(
            f"{base}/api/v1/me",
            headers={"X-Forwarded-Proto": "https"},
            timeout=10,
            allow_redirects=False,
        )
        allowed = requests.get(
            f"{base}/metrics", headers={"X-Forwarded-For": "10.20.1.1"}, timeout=10
        )
        other = requests.get(
            f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
        )
    finally:
        stop(process)
    if proxies:
        assert https.status_code == 401  # not redirected: gunicorn believed the proxy
        assert allowed.status_code == 200
    else:
        assert https.status_code == 301
        assert allowed.status_code == 404
    assert other.status_code == 404


def test_an_old_trail_with_an_implausible_id_keeps_it_and_new_rows_are_still_checked():
    """The migration on a trail written before the rule: nothing is rewritten, the constraint
    stays NOT VALID there, and it still refuses new rows (DDL rolls back with the test)."""
    sql = (test_serve.ROOT / "accounts" / "sql" / "0013_audit_request_id.sql").read_text()
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_request_id_plausible;"
            " INSERT INTO audit_logs (event_type, severity, user_agent, request_id,"
            "  target_type, target_id, details)"
            " VALUES ('login_failed', 'warning', '', 'old id\x1b[31m', '', '', '{}')"
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending events before ALTER
        cursor.execute(sql)
        cursor.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = %s",
            ["audit_logs_request_id_plausible"],
        )
        assert cursor.fetchone() == (False,)
    assert AuditLog.objects.filter(request_id="old id\x1b[31m").exists()
    with (
        pytest.raises(IntegrityError, match="audit_logs_request_id_plausible"),
        transaction.atomic(),
        rls.service_context(request_id="new id"),
    ):
        audit.audit_event(audit.LOGIN_FAILED)
