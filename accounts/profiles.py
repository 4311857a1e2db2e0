"""The user's profile (``/me/profile/``): name, display name, avatar, company, time zone, locale.

Reads and writes run in the caller's row-level-security context: the runtime role may update
``users.full_name`` and the profile's columns of the user's own rows (accounts/sql/0002). A
profile that is missing (accounts made by ``createsuperuser`` or the admin) is created with the
defaults by ``ensure_user_profile()`` (accounts/sql/0010) before the first save.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import connection, transaction
from django.db.models.functions import Now

from accounts import audit
from accounts.models import User, UserProfile

PROFILE_UPDATED = "profile_updated"

DEFAULT_TIMEZONE = "UTC"
DEFAULT_LOCALE = "en"
# users.full_name, then the user_profiles columns this page edits.
FIELDS = ("full_name", "display_name", "avatar_url", "company", "timezone", "locale")


@dataclass(frozen=True)
class Profile:
    """What ``/me/profile/`` shows and edits."""

    full_name: str
    display_name: str
    avatar_url: str
    company: str
    timezone: str
    locale: str


def profile_for(*, user_id: int) -> Profile:
    """The user's profile; the defaults for the fields of a missing profile row (one query)."""
    row = (
        User.objects.filter(pk=user_id)
        .values(
            "full_name",
            "profile__display_name",
            "profile__avatar_url",
            "profile__company",
            "profile__timezone",
            "profile__locale",
        )
        .get()
    )
    return Profile(
        full_name=row["full_name"],
        display_name=row["profile__display_name"] or "",
        avatar_url=row["profile__avatar_url"] or "",
        company=row["profile__company"] or "",
        timezone=row["profile__timezone"] or DEFAULT_TIMEZONE,
        locale=row["profile__locale"] or DEFAULT_LOCALE,
    )


def profile_update(
    *,
    user_id: int,
    full_name: str,
    display_name: str,
    avatar_url: str,
    company: str,
    timezone: str,
    locale: str,
    user_agent: str = "",
) -> list[str]:
    """Save the user's profile; return the names of the fields that changed (in FIELDS order).

    The values must be validated already (accounts.forms.ProfileForm). Nothing is written when
    nothing changed; otherwise the change is audited (``profile_updated``) with the names of
    the changed fields, never their values.
    """
    wanted = {
        "full_name": full_name,
        "display_name": display_name,
        "avatar_url": avatar_url,
        "company": company,
        "timezone": timezone,
        "locale": locale,
    }
    with transaction.atomic():
        current = asdict(profile_for(user_id=user_id))
        changed = [field for field in FIELDS if current[field] != wanted[field]]
        if not changed:
            return []
        if "full_name" in changed:
            User.objects.filter(pk=user_id).update(full_name=full_name)
        profile_changes = {field: wanted[field] for field in changed if field != "full_name"}
        if profile_changes:
            with connection.cursor() as cursor:
                cursor.execute("SELECT ensure_user_profile(p_user_id => %s)", [user_id])
            UserProfile.objects.filter(user_id=user_id).update(**profile_changes, updated_at=Now())
        audit.audit_event(
            PROFILE_UPDATED,
            user_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"fields": changed},
            user_agent=user_agent,
        )
    return changed
