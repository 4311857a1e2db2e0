"""Production settings (DEBUG=false): `check --deploy` is clean with the environment README.md
documents, and responses carry HTTPS-only cookies and the security headers.

The settings are read in a subprocess started with that environment (settings.py decides them
at import); the responses are then checked in-process with those same values.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from witchcraft.testing.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
HOST = "witchcraft.example"
ORIGIN = f"https://{HOST}"
# README.md, "Production": the variables a deployment sets (values here are examples).
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": HOST,
    "SITE_URL": ORIGIN,
    "CSRF_TRUSTED_ORIGINS": ORIGIN,
    "EMAIL_URL": "submission://mailer:a-mail-password@smtp.example.com",
}
# Variables that would change the outcome if the developer's shell happened to set them.
UNSET = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "STAFF_2FA_REQUIRED",
)
SECURITY_SETTINGS = (
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SITE_URL",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SECURE_CSP",
)
SHOW_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({n: getattr(s, n) for n in %r} | {'DEBUG': s.DEBUG, "
    "'STAFF_2FA_REQUIRED': s.STAFF_2FA_REQUIRED}))"
)


def _run(args: list[str], **changes: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env |= {"DJANGO_SETTINGS_MODULE": "witchcraft.settings", **PRODUCTION_ENV, **changes}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _check_deploy(**changes: str) -> subprocess.CompletedProcess:
    return _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **changes)


# --- manage.py check --deploy --------------------------------------------------------------


def test_check_deploy_is_clean_with_the_production_environment():
    done = _check_deploy()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_fails_with_debug_on():
    done = _check_deploy(DEBUG="true")
    assert done.returncode != 0
    assert "security.W018" in done.stderr  # DEBUG in deployment


def test_check_deploy_fails_with_the_generated_development_key():
    done = _check_deploy(SECRET_KEY="witchcraft-dev-" + secrets.token_urlsafe(50))
    assert done.returncode != 0
    assert "witchcraft.E001" in done.stderr


def test_check_deploy_fails_with_mail_printed_to_the_console():
    done = _check_deploy(EMAIL_URL="consolemail://")
    assert done.returncode != 0
    assert "mail.E001" in done.stderr


# --- the settings production gets ----------------------------------------------------------


@pytest.fixture(scope="module")
def production():
    """The security settings as settings.py decides them for the production environment."""
    done = _run(["-c", SHOW_SETTINGS % (SECURITY_SETTINGS,)])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_production_settings(production):
    assert production["DEBUG"] is False
    assert production["ALLOWED_HOSTS"] == [HOST]
    assert production["CSRF_TRUSTED_ORIGINS"] == [ORIGIN]
    assert production["SITE_URL"] == ORIGIN
    assert production["SECURE_SSL_REDIRECT"] is True
    # Only the probes that come over plain HTTP from inside the network are not redirected.
    assert production["SECURE_REDIRECT_EXEMPT"] == [r"^healthz$", r"^metrics$"]
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_HSTS_PRELOAD"] is True
    for name in ("SESSION_COOKIE", "CSRF_COOKIE"):
        assert production[f"{name}_SECURE"] is True
        assert production[f"{name}_HTTPONLY"] is True
        assert production[f"{name}_SAMESITE"] == "Lax"
    assert production["STAFF_2FA_REQUIRED"] is True
    csp = production["SECURE_CSP"]
    assert "'unsafe-inline'" not in json.dumps(csp)
    assert csp["upgrade-insecure-requests"] is True


@pytest.fixture
def in_production(production, settings):
    """This test process with the production security settings; a client for the real host."""
    for name in SECURITY_SETTINGS:
        setattr(settings, name, production[name])
    settings.DEBUG = False
    settings.STAFF_2FA_REQUIRED = False  # the admin page below is reached with a password only
    return Client(HTTP_HOST=HOST)


def test_responses_carry_hsts_csp_and_the_other_security_headers(in_production, db):
    response = in_production.get(reverse("accounts:login"), secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "upgrade-insecure-requests",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp
    # The site's pages need no inline code at all.
    assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\son\w+=|\sstyle=", response.text)


def test_the_csp_nonce_is_fresh_per_response_and_matches_the_page(in_production, db):
    boss = User.objects.create_superuser(email="boss@example.com", password="x" * 12)
    in_production.force_login(boss)
    nonces = []
    for _ in range(2):
        page = in_production.get("/admin/", secure=True)
        assert page.status_code == 200
        nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", page["Content-Security-Policy"])
        assert nonce, page["Content-Security-Policy"]
        assert f'nonce="{nonce.group(1)}"' in page.text
        nonces.append(nonce.group(1))
    assert nonces[0] != nonces[1]


def test_cookies_are_secure_http_only_and_same_site(in_production, db):
    user = UserFactory(email="ann@example.com")
    page = in_production.get(reverse("accounts:login"), secure=True)
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] is True
    assert csrf["httponly"] is True
    assert csrf["samesite"] == "Lax"

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = in_production.post(
        reverse("accounts:login"),
        {"email": user.email, "password": "correct horse battery", "csrfmiddlewaretoken": token},
        secure=True,
        HTTP_ORIGIN=ORIGIN,
    )
    assert signed_in.status_code == 302
    session = signed_in.cookies["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"


def test_a_post_from_another_origin_is_refused_even_with_a_token(in_production, db):
    page = in_production.get(reverse("accounts:login"), secure=True)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    csrf_client = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
    csrf_client.cookies = in_production.cookies
    response = csrf_client.post(
        reverse("accounts:login"),
        {"email": "a@example.com", "password": "whatever", "csrfmiddlewaretoken": token},
        secure=True,
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403


def test_plain_http_is_redirected_to_https_except_the_health_and_metrics_probes(
    in_production, db, settings
):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    response = in_production.get("/auth/login/?next=/me/security/")
    assert response.status_code == 301
    assert response["Location"] == f"{ORIGIN}/auth/login/?next=/me/security/"
    assert in_production.get("/healthz").status_code in (200, 503)  # answered, not redirected
    # /metrics is answered over HTTP too: here a 404, since no token or allow-list is set.
    assert in_production.get("/metrics").status_code == 404


def test_an_unknown_host_is_refused(in_production, db):
    response = in_production.get("/auth/login/", secure=True, HTTP_HOST="evil.example")
    assert response.status_code == 400


# --- CSRF ------------------------------------------------------------------------------------


def test_a_post_without_a_csrf_token_is_403(db):
    browser = Client(enforce_csrf_checks=True)
    user = UserFactory(email="bob@example.com")
    response = browser.post(
        reverse("accounts:login"), {"email": user.email, "password": "correct horse battery"}
    )
    assert response.status_code == 403
    assert "sessionid" not in response.cookies
    # The same form with the token it was served with goes through.
    page = browser.get(reverse("accounts:login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = browser.post(
        reverse("accounts:login"),
        {"email": user.email, "password": "correct horse battery", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
