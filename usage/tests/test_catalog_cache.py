"""The catalog (models with prices, public plans) is read from the cache, and a staff change
shows at once (usage.catalog, billing.selectors.public_tiers, witchcraft.platform.cached)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import SubscriptionTier
from usage.models import AIModel, AIProvider
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db


def _tables_read(client, path: str) -> tuple[list, set[str]]:
    """The answer and the catalog tables its queries named (the request's identity statements
    name none)."""
    with CaptureQueriesContext(connection) as queries:
        body = client.get(path).json()
    named = {
        table
        for query in queries.captured_queries
        for table in ("ai_models", "ai_providers", "subscription_tiers")
        if table in query["sql"]
    }
    return body, named


def test_the_models_endpoint_reads_no_table_once_warm(client):
    first, read = _tables_read(client, "/api/v1/catalog/models")
    assert first
    assert read == {"ai_models", "ai_providers"}
    again, read = _tables_read(client, "/api/v1/catalog/models")
    assert again == first
    assert read == set()


def test_the_plans_endpoint_reads_no_table_once_warm(client):
    first, read = _tables_read(client, "/api/v1/catalog/tiers")
    assert [t["slug"] for t in first][:1] == ["free"]
    assert read == {"subscription_tiers"}
    again, read = _tables_read(client, "/api/v1/catalog/tiers")
    assert again == first
    assert read == set()


def _price(client, name: str) -> str:
    (model,) = [m for m in client.get("/api/v1/catalog/models").json() if m["name"] == name]
    return model["input_price_per_million"]


def test_a_staff_price_change_shows_at_once(client, admin_client):
    model = factories.catalog_model()
    before = _price(client, model.name)
    model.input_price_per_million = Decimal(before) + Decimal("1.5")
    model.save()
    assert Decimal(_price(client, model.name)) == Decimal(before) + Decimal("1.5")


def test_a_deactivated_model_or_provider_leaves_the_catalog(client):
    model = factories.catalog_model()
    names = {m["name"] for m in client.get("/api/v1/catalog/models").json()}
    assert model.name in names
    AIProvider.objects.filter(pk=model.provider_id).update(is_active=False)  # no signal
    provider = AIProvider.objects.get(pk=model.provider_id)
    provider.save()  # what the admin does: the signal forgets the cache
    assert model.name not in {m["name"] for m in client.get("/api/v1/catalog/models").json()}
    provider.is_active = True
    provider.save()
    AIModel.objects.filter(pk=model.pk).update(is_active=False)
    AIModel.objects.get(pk=model.pk).save()
    assert model.name not in {m["name"] for m in client.get("/api/v1/catalog/models").json()}


def test_a_plan_change_shows_at_once(client):
    client.get("/api/v1/catalog/tiers")
    tier = SubscriptionTier.objects.get(slug="pro")
    tier.description = "Now with more"
    tier.save()
    (pro,) = [t for t in client.get("/api/v1/catalog/tiers").json() if t["slug"] == "pro"]
    assert pro["description"] == "Now with more"


def test_whoever_warms_it_the_catalog_holds_only_active_public_rows(admin_client, client):
    """Built from explicit filters, not from what the first caller may see: staff (who see
    inactive rows through row-level security) warming it change nothing for members."""
    model = factories.catalog_model()
    AIModel.objects.filter(pk=model.pk).update(is_active=False)
    admin_client.get("/api/v1/catalog/models")
    assert model.name not in {m["name"] for m in client.get("/api/v1/catalog/models").json()}
