"""Accounts: the people who use Witchcraft and their security trail."""

from contextlib import nullcontext

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connections, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower, Now, Trim
from django.utils import timezone

from accounts.emails import normalize_email
from witchcraft.platform import rls
from witchcraft.platform.constraints import json_object, one_of, sha256_hex


def hashed_secret(table: str, *, unique: str, expiry: str) -> list[models.BaseConstraint]:
    """The constraints of a table of secrets kept as SHA-256: the digest is unique (``unique``)
    and really a digest, and the secret expires after it was made (``expiry``)."""
    return [
        models.UniqueConstraint(fields=["token_hash"], name=unique),
        sha256_hex(table),
        models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name=expiry),
    ]


class UserManager(BaseUserManager):
    """``create_user`` and ``create_superuser`` (``manage.py createsuperuser``, a shell, tests)
    make the account the one way there is, ``accounts.services.user_create``: registration's
    rows (profile, quota, free subscription, ``user_created`` audit row), then the staff flags
    through ``set_user_staff`` (audited).

    Called as the database owner (a command, a shell: no identity set), the work is done as the
    runtime role in the service context, so the rows and the audit trail say so; called under
    a user's identity, the database decides what that user may do (the flags: a superuser
    only). Other fields (``email_verified_at``, ``date_joined``, ...) are written after, as the
    caller may.
    """

    use_in_migrations = False

    def get_by_natural_key(self, username):
        return self.get(email=normalize_email(username))

    def _create(self, email: str, password: str | None, **fields) -> "User":
        from accounts import services  # lazily: services needs the apps ready

        if not email:
            raise ValueError("An email address is required.")
        flags = {flag: bool(fields.pop(flag, False)) for flag in ("is_staff", "is_superuser")}
        full_name = fields.pop("full_name", "") or ""
        fields.pop("password", None)
        database = self._db or "default"
        with transaction.atomic(using=database):
            with connections[database].cursor() as cursor:
                cursor.execute("SELECT current_setting('role') = 'none'")
                as_owner = cursor.fetchone()[0]
            with rls.service_context() if as_owner else nullcontext():
                user_id = services.user_create(
                    email=email,
                    password_hash=make_password(password),
                    full_name=full_name,
                    **flags,
                )
            if fields:
                self.filter(pk=user_id).update(**fields)
        return self.get(pk=user_id)

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        # The operator who runs createsuperuser vouches for the address: a fresh server may
        # have no mail to confirm it with, and the banner would otherwise ask for ever.
        fields.setdefault("email_verified_at", timezone.now())
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A Witchcraft account. The email address is the login, unique whatever its case."""

    # Stored normalised (see the CHECK below), so the plain unique index is case-insensitive.
    email = models.EmailField(
        max_length=254,
        unique=True,
        error_messages={"unique": "An account with this email address already exists."},
    )
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # Soft delete: the row stays (usage, billing and audit history point at it), personal data
    # is anonymised and the account can no longer sign in.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        db_table = "users"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower(Trim("email"))),
                name="users_email_normalized",
                violation_error_message="Email addresses are stored trimmed and lower-case.",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class UserProfile(models.Model):
    """Extended, user-editable information; exactly one per user."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    display_name = models.CharField(max_length=120, blank=True)
    avatar_url = models.URLField(max_length=500, blank=True)
    company = models.CharField(max_length=200, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(max_length=16, default="en")
    preferences = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_profiles"
        constraints = [json_object("user_profiles", "preferences")]

    def __str__(self) -> str:
        return self.display_name or str(self.user_id)


class AccessToken(models.Model):
    """A bearer token of the client app or an API key. Only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64)
    prefix = models.CharField(
        max_length=16, help_text="the first characters, shown to tell tokens apart"
    )
    scopes = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "access_tokens"
        indexes = [
            # Token validation: one lookup by hash per API call (unique, see constraints).
            models.Index(fields=["expires_at"], name="idx_access_tokens_expired"),
        ]
        constraints = [
            *hashed_secret(
                "access_tokens",
                unique="idx_access_tokens_token_hash",
                expiry="access_tokens_expiry_after_creation",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="access_tokens_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ServiceCredential(models.Model):
    """A staff-issued credential of the backend that calls the AI providers: it records usage
    and reserves quota for the user each request names (accounts.service_credentials). Only its
    SHA-256 is stored. Written only through SQL functions (accounts/sql/0011), read by staff."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, help_text="the first characters, shown to tell credentials apart"
    )
    token_hash = models.CharField(max_length=64)
    # Subset of accounts.scopes.SERVICE_SCOPES (a literal here: migrations copy it as written).
    scopes = ArrayField(models.CharField(max_length=32))
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = "service_credentials"
        constraints = [
            *hashed_secret(
                "service_credentials",
                unique="service_credentials_token_hash_key",
                expiry="service_credentials_expiry_after_creation",
            ),
            models.CheckConstraint(
                condition=~Q(name=""), name="service_credentials_name_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(scopes__contained_by=["usage.read", "usage.record", "agents"])
                & Q(scopes__len__gt=0),
                name="service_credentials_scopes_valid",
            ),
            models.CheckConstraint(
                condition=Q(revoked_by__isnull=True) | Q(revoked_at__isnull=False),
                name="service_credentials_revoked_by_needs_revoked_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class _OneTimeToken(models.Model):
    """A single-use, expiring token mailed to a user; only its SHA-256 is stored."""

    token_hash = models.CharField(max_length=64)  # unique: see each table's constraints
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        abstract = True


class PasswordResetToken(_OneTimeToken):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_reset_tokens")

    class Meta:
        db_table = "password_reset_tokens"
        constraints = [
            *hashed_secret(
                "password_reset_tokens",
                unique="password_reset_tokens_token_hash_key",
                expiry="password_reset_tokens_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"password reset for user {self.user_id}"


class EmailVerificationToken(_OneTimeToken):
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="email_verification_tokens"
    )
    email = models.EmailField(max_length=254)

    class Meta:
        db_table = "email_verification_tokens"
        constraints = [
            *hashed_secret(
                "email_verification_tokens",
                unique="email_verification_tokens_token_hash_key",
                expiry="email_verification_tokens_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"verification of {self.email}"


class AuditSeverity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AuditLog(models.Model):
    """One security-relevant event. Append-only: the application never updates or deletes it."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_default=Now())
    # Subject of the event; PROTECT: deleting a user must not erase their trail.
    user = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_logs"
    )
    # Who acted: differs from ``user`` under impersonation or for staff actions.
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    event_type = models.CharField(max_length=64)
    severity = models.CharField(
        max_length=16, choices=AuditSeverity.choices, default=AuditSeverity.INFO
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "audit_logs"
        indexes = [
            # Failed sign-ins of one account in the last minutes (lockout).
            models.Index(
                fields=["user", "-created_at"],
                name="idx_audit_logs_failed_logins",
                condition=Q(event_type="login_failed"),
            ),
            # Security events (warnings and worse) by time: dashboards and spike detection.
            models.Index(
                F("created_at").desc(),
                name="idx_audit_logs_security",
                condition=Q(severity__in=["warning", "critical"]),
            ),
            models.Index(F("created_at").desc(), name="idx_audit_logs_created_at"),
        ]
        constraints = [
            one_of("audit_logs", "severity", AuditSeverity.values),
            json_object("audit_logs", "details"),
            models.CheckConstraint(
                condition=~Q(event_type=""), name="audit_logs_event_type_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.created_at:%Y-%m-%d %H:%M})"


class UserSession(AbstractBaseSession):
    """A browser session (Django's session table, with its owner): the "signed-in devices"."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="sessions"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    last_seen_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_sessions"

    def __str__(self) -> str:
        return f"session of {self.user_id or 'anonymous'}"

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore
