"""Fixtures shared by every app's tests (factories live in witchcraft/testing/factories.py)."""

import pytest

from witchcraft.testing import factories


@pytest.fixture
def user(db):
    return factories.UserFactory()


@pytest.fixture
def catalog_model(db):
    """A priced model from the catalog the migrations load."""
    return factories.catalog_model()
