"""The AI catalog as the site shows it (active models of active providers, with prices), cached
(witchcraft.platform.cached): the API's catalog endpoint and every model or price lookup in Python
read it, not the tables. Money is not decided here: the SQL functions price each request from
``ai_models`` itself.

Staff changes (the admin, any ``save()``/``delete()`` of a provider or model) forget it at once
through the signals below.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models.signals import post_delete, post_save

from usage.models import AIModel, AIProvider
from witchcraft.platform.cached import Snapshot


@dataclass(frozen=True)
class CatalogModel:
    """An active model of an active provider, with its prices (US dollars per 1M tokens)."""

    id: int
    name: str
    display_name: str
    provider_id: int
    provider: str  # slug
    provider_name: str
    is_local: bool
    context_window: int
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    cached_input_price_per_million: Decimal


@dataclass(frozen=True)
class Catalog:
    models: tuple[CatalogModel, ...]  # by provider slug, then model name

    def named(self, name: str) -> list[CatalogModel]:
        return [m for m in self.models if m.name == name]

    def of_provider(self, provider: str, name: str) -> CatalogModel | None:
        return next((m for m in self.models if m.provider == provider and m.name == name), None)

    def by_id(self, model_id: int) -> CatalogModel | None:
        return next((m for m in self.models if m.id == model_id), None)


def _build() -> Catalog:
    rows = (
        AIModel.objects.filter(is_active=True, provider__is_active=True)
        .select_related("provider")
        .order_by("provider__slug", "name")
    )
    return Catalog(
        models=tuple(
            CatalogModel(
                id=m.id,
                name=m.name,
                display_name=m.display_name,
                provider_id=m.provider_id,
                provider=m.provider.slug,
                provider_name=m.provider.name,
                is_local=m.provider.is_local,
                context_window=m.context_window,
                input_price_per_million=m.input_price_per_million,
                output_price_per_million=m.output_price_per_million,
                cached_input_price_per_million=m.cached_input_price_per_million,
            )
            for m in rows
        )
    )


snapshot: Snapshot[Catalog] = Snapshot("usage-catalog", _build)


def catalog() -> Catalog:
    return snapshot.get()


def _forget(**kwargs) -> None:
    snapshot.forget()


for _model in (AIProvider, AIModel):
    post_save.connect(_forget, sender=_model, dispatch_uid=f"catalog-{_model.__name__}-save")
    post_delete.connect(_forget, sender=_model, dispatch_uid=f"catalog-{_model.__name__}-delete")
