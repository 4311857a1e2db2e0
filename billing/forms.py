"""Billing's forms shared by the admin and the staff dashboard."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from django import forms
from django.utils import timezone

from billing.services import RAISE_MAX_COST, RAISE_MAX_TOKENS

NO_LIMIT = "Raise the token limit, the cost limit or both."
UNTIL_PAST = "The end of a raise must be in the future."


class QuotaRaiseForm(forms.Form):
    """A temporary limit raise (billing.services.quota_raise_limit): a new token and / or cost
    limit until a moment (UTC). The database checks the rest (above the plan, end by the next
    period)."""

    tokens_limit = forms.IntegerField(
        label="Token limit", required=False, min_value=1, max_value=RAISE_MAX_TOKENS
    )
    cost_limit = forms.DecimalField(
        label="Cost limit ($)",
        required=False,
        min_value=Decimal("0.000001"),
        max_value=RAISE_MAX_COST,
        max_digits=12,
        decimal_places=6,
    )
    until = forms.DateTimeField(
        label="Until (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_until(self):
        until = self.cleaned_data["until"]
        if timezone.is_naive(until):
            until = until.replace(tzinfo=UTC)
        if until <= timezone.now():
            raise forms.ValidationError(UNTIL_PAST)
        return until

    def clean(self):
        data = super().clean()
        if not self.errors and data.get("tokens_limit") is None and data.get("cost_limit") is None:
            raise forms.ValidationError(NO_LIMIT)
        return data
