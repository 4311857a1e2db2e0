"""The public ai_models policy: a member sees a model only when it and its provider are
active; staff see every model (as the runtime role)."""

import pytest
from django.db import connection, transaction

from usage.models import AIProvider
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db


def _visible(user, model_id: int) -> bool:
    with transaction.atomic(), rls.user_context(user), connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM ai_models WHERE id = %s)", [model_id])
        return cursor.fetchone()[0]


def test_a_model_of_an_inactive_provider_is_hidden_from_members_not_staff():
    model = factories.catalog_model()
    member = factories.UserFactory()
    staff = factories.UserFactory(is_staff=True)
    assert _visible(member, model.pk)
    AIProvider.objects.filter(pk=model.provider_id).update(is_active=False)
    assert not _visible(member, model.pk)
    assert _visible(staff, model.pk)
