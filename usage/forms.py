"""Forms of the user's usage pages."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.core.exceptions import ValidationError

from usage.dashboard_selectors import today_utc
from usage.models import AIModel, AIProvider
from usage.selectors import MAX_DAILY_DAYS
from witchcraft.platform.form_fields import Day, WholeNumber

DEFAULT_DAYS = 30
RANGE_REVERSED = "The start date must not be after the end date."
RANGE_TOO_LONG = f"The range may span at most {MAX_DAILY_DAYS} days."


class UsageRangeForm(forms.Form):
    """A range of UTC days from the query string ``?from=YYYY-MM-DD&to=YYYY-MM-DD``.

    Both are optional: ``to`` defaults to today (UTC), ``from`` to DEFAULT_DAYS days ending on
    ``to``. A range that runs backwards or spans more than MAX_DAILY_DAYS days is refused
    (a form error), never shortened. ``cleaned_data`` then holds ``from`` and ``to``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these fields cannot be declared as class attributes.
        self.fields["from"] = forms.DateField(
            required=False, label="From", widget=forms.DateInput({"type": "date"})
        )
        self.fields["to"] = forms.DateField(
            required=False, label="To", widget=forms.DateInput({"type": "date"})
        )

    def clean(self):
        data = super().clean()
        if self.errors:  # a date that did not parse: its field error says so
            return data
        date_to = data.get("to") or today_utc()
        # At most DEFAULT_DAYS - 1 days back: the earliest date Python knows is date.min.
        back = min(DEFAULT_DAYS - 1, (date_to - date.min).days)
        date_from = data.get("from") or date_to - timedelta(days=back)
        if date_from > date_to:
            raise ValidationError(RANGE_REVERSED, code="reversed")
        if (date_to - date_from).days + 1 > MAX_DAILY_DAYS:
            raise ValidationError(RANGE_TOO_LONG, code="too_long")
        data["from"], data["to"] = date_from, date_to
        return data

    def error_text(self) -> str:
        """Every error on one line, each field's named: the CSV export's 400 answer."""
        messages = list(self.non_field_errors())
        for name, field in self.fields.items():
            messages += [f"{field.label}: {error}" for error in self.errors.get(name, [])]
        return " ".join(messages)


# The daily chart's switches (GET parameters of the usage pages) ------------------------------


def chart_switches(params) -> tuple[str, str]:
    """The daily chart's grouping and measure from the query string (``chart_by``,
    ``chart_metric``); a value that is not one of the choices gives the default (provider,
    cost)."""
    by = params.get("chart_by")
    metric = params.get("chart_metric")
    return (
        by if by in ("provider", "model") else "provider",
        metric if metric in ("cost", "tokens") else "cost",
    )


# The request log's parameters ----------------------------------------------------------------

PROVIDER_OR_MODEL = "Name a provider or a model, not both."
UNKNOWN_PROVIDER = "No provider has this name."
UNKNOWN_MODEL = "No model has this id."


class RequestLogForm(forms.Form):
    """``?day=YYYY-MM-DD&provider=<slug>`` or ``&model=<id>``: one UTC day of one provider or
    model. ``cleaned_data`` then holds ``day``, ``provider`` (an AIProvider) and ``model``
    (an AIModel or None). Every bad value is a form error: an unparsable or out-of-range day,
    an unknown provider or model, NUL characters (CharField refuses them)."""

    day = Day(label="Day (UTC)")
    provider = forms.SlugField(required=False, max_length=40)
    model = WholeNumber(required=False, min_value=1, max_value=2**31 - 1)  # an integer id

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        slug, model_id = data.get("provider"), data.get("model")
        if bool(slug) == (model_id is not None):
            raise ValidationError(PROVIDER_OR_MODEL, code="provider_or_model")
        if model_id is not None:
            model = AIModel.objects.select_related("provider").filter(pk=model_id).first()
            if model is None:
                self.add_error("model", UNKNOWN_MODEL)
                return data
            data["model"], data["provider"] = model, model.provider
        else:
            provider = AIProvider.objects.filter(slug=slug).first()
            if provider is None:
                self.add_error("provider", UNKNOWN_PROVIDER)
                return data
            data["provider"], data["model"] = provider, None
        return data
