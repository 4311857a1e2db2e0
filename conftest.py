"""Fixtures shared by every app's tests (factories live in witchcraft/testing/factories.py)."""

import pytest

from witchcraft.testing import factories


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many users; production hashing (Argon2id, bcrypt) is tested on its own."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _mail_in_the_foreground(settings):
    """Tests read mail.outbox right after the request (test transactions never commit)."""
    settings.MAIL_IN_BACKGROUND = False


@pytest.fixture(autouse=True)
def _empty_cache():
    """Rate-limit counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def user(db):
    return factories.UserFactory()


@pytest.fixture
def catalog_model(db):
    """A priced model from the catalog the migrations load."""
    return factories.catalog_model()
