"""The four plans. Limits are per calendar month; cost limits are what the user's requests may
cost us at provider prices (a margin under the plan price), token limits what they may use."""

from decimal import Decimal as D

from django.db import migrations

TIERS = [
    {
        "slug": "free",
        "name": "Free",
        "sort_order": 1,
        "is_public": True,
        "description": "Try Witchcraft: the standard models, a modest monthly allowance.",
        "monthly_price": D(0),
        "yearly_price": D(0),
        "monthly_token_limit": 100_000,
        "monthly_cost_limit": D("1.00"),
        "requests_per_minute": 10,
        "features": {
            "agents": True,
            "api_tokens": 2,
            "premium_models": False,
            "support": "community",
            "history_days": 30,
        },
    },
    {
        "slug": "pro",
        "name": "Pro",
        "sort_order": 2,
        "is_public": True,
        "description": "For individuals who use Witchcraft every day.",
        "monthly_price": D("20.00"),
        "yearly_price": D("200.00"),
        "monthly_token_limit": 5_000_000,
        "monthly_cost_limit": D("15.00"),
        "requests_per_minute": 60,
        "features": {
            "agents": True,
            "api_tokens": 10,
            "premium_models": True,
            "support": "email",
            "history_days": 365,
        },
    },
    {
        "slug": "team",
        "name": "Team",
        "sort_order": 3,
        "is_public": True,
        "description": "For teams: higher limits and priority support.",
        "monthly_price": D("60.00"),
        "yearly_price": D("600.00"),
        "monthly_token_limit": 25_000_000,
        "monthly_cost_limit": D("45.00"),
        "requests_per_minute": 300,
        "features": {
            "agents": True,
            "api_tokens": 50,
            "premium_models": True,
            "support": "priority",
            "history_days": 730,
        },
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "sort_order": 4,
        "is_public": False,
        "description": "Custom contracts, assigned by our staff.",
        "monthly_price": D("1000.00"),
        "yearly_price": D("10000.00"),
        "monthly_token_limit": 500_000_000,
        "monthly_cost_limit": D("750.00"),
        "requests_per_minute": 2000,
        "features": {
            "agents": True,
            "api_tokens": 500,
            "premium_models": True,
            "support": "dedicated",
            "history_days": 2555,
            "sso": True,
        },
    },
]


def load_tiers(apps, schema_editor):
    tier_model = apps.get_model("billing", "SubscriptionTier")
    for tier in TIERS:
        values = dict(tier)
        tier_model.objects.update_or_create(slug=values.pop("slug"), defaults=values)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(load_tiers, migrations.RunPython.noop)]
