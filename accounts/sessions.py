"""The session engine (``SESSION_ENGINE = "accounts.sessions"``): Django's database sessions,
stored in ``user_sessions`` with the signed-in user, so a user can see and end their devices."""

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import DatabaseError, IntegrityError, router, transaction
from django.utils import timezone

# What a save writes; created_at, ip and user_agent are set once, when the session is made or
# signed in (accounts.login), and never overwritten by a later save.
_UPDATED = ("session_data", "expire_date", "user", "last_seen_at")


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import UserSession

        return UserSession

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get(SESSION_KEY)
        instance.user_id = int(user_id) if user_id else None
        instance.last_seen_at = timezone.now()
        return instance

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        obj = self.create_model_instance(data)
        using = router.db_for_write(self.model, instance=obj)
        try:
            with transaction.atomic(using=using):
                if must_create:
                    obj.save(force_insert=True, using=using)
                else:
                    obj.save(force_update=True, update_fields=_UPDATED, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise


def sessions_keep_signed_in(*, user, except_session_key: str | None = None) -> int:
    """After a password change that leaves the user's other devices signed in: store the new
    password's session hash in each of their other sessions (Django signs out a session whose
    hash no longer matches the password); return how many. Runs in the caller's context."""
    from accounts.models import UserSession

    store = SessionStore()
    auth_hash = user.get_session_auth_hash()
    sessions = UserSession.objects.filter(user_id=user.pk, expire_date__gt=timezone.now())
    if except_session_key:
        sessions = sessions.exclude(session_key=except_session_key)
    kept = 0
    for session_key, session_data in sessions.values_list("session_key", "session_data"):
        data = store.decode(session_data)
        if data.get(SESSION_KEY) != str(user.pk):
            continue
        data[HASH_SESSION_KEY] = auth_hash
        kept += UserSession.objects.filter(session_key=session_key).update(
            session_data=store.encode(data)
        )
    return kept
