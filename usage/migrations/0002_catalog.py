"""The AI catalog: providers and current models with their published prices (US dollars per
million tokens, as published by each vendor in 2026; staff keep them current in the admin —
a price change applies to new usage rows only, since each row keeps the prices it used)."""

from decimal import Decimal as D

from django.db import migrations

PROVIDERS = [
    # slug, name, base URL, local
    ("openai", "OpenAI", "https://api.openai.com/v1", False),
    ("anthropic", "Anthropic", "https://api.anthropic.com/v1", False),
    ("google", "Google Gemini", "https://generativelanguage.googleapis.com/v1beta", False),
    ("mistral", "Mistral AI", "https://api.mistral.ai/v1", False),
    ("ollama", "Ollama (local)", "http://127.0.0.1:11434", True),
]

MODELS = [
    # provider, name, display name, context window, input, output, cached input
    ("openai", "gpt-5", "GPT-5", 400_000, D("1.25"), D("10.00"), D("0.125")),
    ("openai", "gpt-5-mini", "GPT-5 mini", 400_000, D("0.25"), D("2.00"), D("0.025")),
    ("openai", "gpt-4.1", "GPT-4.1", 1_047_576, D("2.00"), D("8.00"), D("0.50")),
    ("openai", "gpt-4o-mini", "GPT-4o mini", 128_000, D("0.15"), D("0.60"), D("0.075")),
    ("anthropic", "claude-opus-4-1", "Claude Opus 4.1", 200_000, D("15.00"), D("75.00"), D("1.50")),
    (
        "anthropic",
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5",
        200_000,
        D("3.00"),
        D("15.00"),
        D("0.30"),
    ),
    ("anthropic", "claude-haiku-4-5", "Claude Haiku 4.5", 200_000, D("1.00"), D("5.00"), D("0.10")),
    ("google", "gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576, D("1.25"), D("10.00"), D("0.3125")),
    ("google", "gemini-2.5-flash", "Gemini 2.5 Flash", 1_048_576, D("0.30"), D("2.50"), D("0.075")),
    (
        "google",
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        1_048_576,
        D("0.10"),
        D("0.40"),
        D("0.025"),
    ),
    ("mistral", "mistral-large-latest", "Mistral Large", 131_072, D("2.00"), D("6.00"), D("2.00")),
    ("mistral", "mistral-small-latest", "Mistral Small", 131_072, D("0.10"), D("0.30"), D("0.10")),
    ("mistral", "codestral-latest", "Codestral", 262_144, D("0.30"), D("0.90"), D("0.30")),
    ("ollama", "llama3.1:8b", "Llama 3.1 8B (local)", 131_072, D(0), D(0), D(0)),
    ("ollama", "qwen2.5-coder:7b", "Qwen2.5 Coder 7B (local)", 32_768, D(0), D(0), D(0)),
]


def load_catalog(apps, schema_editor):
    provider_model = apps.get_model("usage", "AIProvider")
    model_model = apps.get_model("usage", "AIModel")
    providers = {}
    for slug, name, base_url, is_local in PROVIDERS:
        providers[slug], _ = provider_model.objects.update_or_create(
            slug=slug, defaults={"name": name, "base_url": base_url, "is_local": is_local}
        )
    for slug, name, display, window, price_in, price_out, price_cached in MODELS:
        model_model.objects.update_or_create(
            provider=providers[slug],
            name=name,
            defaults={
                "display_name": display,
                "context_window": window,
                "input_price_per_million": price_in,
                "output_price_per_million": price_out,
                "cached_input_price_per_million": price_cached,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(load_catalog, migrations.RunPython.noop)]
