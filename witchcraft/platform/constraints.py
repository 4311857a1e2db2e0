"""Builders for the CHECK constraints every app repeats (non-negative counts, enums, digests)."""

from collections.abc import Iterable

from django.db import models
from django.db.models import Func, Q, Value
from django.db.models.lookups import Exact


def non_negative(table: str, *fields: str) -> list[models.CheckConstraint]:
    """One ``field >= 0`` CHECK per field, named ``<table>_<field>_non_negative``."""
    return [
        models.CheckConstraint(
            condition=Q(**{f"{field}__gte": 0}), name=f"{table}_{field}_non_negative"
        )
        for field in fields
    ]


def one_of(table: str, field: str, values: Iterable[str]) -> models.CheckConstraint:
    """``field IN (values)``, named ``<table>_<field>_valid``."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": list(values)}), name=f"{table}_{field}_valid"
    )


def sha256_hex(table: str, field: str = "token_hash") -> models.CheckConstraint:
    """``field`` holds a lower-case hex SHA-256 digest (never a raw token)."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__regex": r"^[0-9a-f]{64}$"}), name=f"{table}_{field}_sha256"
    )


def json_object(table: str, field: str) -> models.CheckConstraint:
    """``field`` is a JSON object (not an array, a string or null)."""
    return models.CheckConstraint(
        condition=Exact(
            Func(field, function="jsonb_typeof", output_field=models.TextField()), Value("object")
        ),
        name=f"{table}_{field}_object",
    )
