"""The catalog the migrations load: providers, priced models, the four tiers."""

from decimal import Decimal
from itertools import pairwise

import pytest

from billing.models import SubscriptionTier
from usage.models import AIModel, AIProvider

pytestmark = pytest.mark.django_db


def test_at_least_five_providers_including_a_local_ollama():
    slugs = set(AIProvider.objects.values_list("slug", flat=True))
    assert {"openai", "anthropic", "google", "mistral", "ollama"} <= slugs
    ollama = AIProvider.objects.get(slug="ollama")
    assert ollama.is_local
    assert (
        not AIModel.objects.filter(provider=ollama)
        .exclude(
            input_price_per_million=0, output_price_per_million=0, cached_input_price_per_million=0
        )
        .exists()
    )


def test_at_least_ten_priced_hosted_models():
    hosted = AIModel.objects.filter(provider__is_local=False, is_active=True)
    assert hosted.count() >= 10
    for model in hosted:
        assert model.input_price_per_million > 0
        assert model.output_price_per_million >= model.input_price_per_million
        assert model.cached_input_price_per_million <= model.input_price_per_million
        assert model.context_window >= 32_000


def test_the_four_tiers_with_increasing_limits():
    tiers = list(SubscriptionTier.objects.order_by("sort_order"))
    assert [t.slug for t in tiers] == ["free", "pro", "team", "enterprise"]
    assert tiers[0].monthly_price == Decimal(0)
    for lower, higher in pairwise(tiers):
        assert higher.monthly_price > lower.monthly_price
        assert higher.monthly_token_limit > lower.monthly_token_limit
        assert higher.monthly_cost_limit > lower.monthly_cost_limit
        assert higher.requests_per_minute > lower.requests_per_minute
    for tier in tiers[1:]:
        assert tier.yearly_price < tier.monthly_price * 12  # a yearly plan is cheaper
        assert tier.monthly_cost_limit < tier.monthly_price  # limits keep a margin
    assert SubscriptionTier.objects.filter(is_public=True).count() == 3
