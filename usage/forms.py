"""Forms of the usage pages: the range of UTC days every usage page shows (with its quick
ranges), the user's usage range, and the quick-range links the shared range form
(templates/_range_form.html) draws."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import ValidationError

from usage.dashboard_selectors import periods
from usage.models import AIModel, AIProvider
from usage.selectors import MAX_DAILY_DAYS
from witchcraft.platform.form_fields import Day, WholeNumber

DEFAULT_DAYS = 30
RANGE_REVERSED = "The start date must not be after the end date."
RANGE_TOO_LONG = f"The range may span at most {MAX_DAILY_DAYS} days."
RANGE_UNKNOWN = "Unknown quick range: choose Today, 7 d, 30 d, This month or Last month."
QUICK = "range"  # the query parameter of a quick range: ?range=7d


def quick_range_field() -> forms.ChoiceField:
    """``?range=`` (one of periods.QUICK_RANGES): a link's, never an input of the form."""
    return forms.ChoiceField(
        choices=[("", ""), *periods.QUICK_RANGES.items()],
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": RANGE_UNKNOWN},
    )


class RangeFormMixin:
    """A form over a range of UTC days: its ``start_name`` and ``end_name`` date fields, and
    ``range`` (a quick range, which wins over the dates). Without either date: DEFAULT_DAYS
    days ending today (UTC). A range that runs backwards or spans more than ``max_days`` days
    is refused (a form error), never shortened.

    After validation: ``cleaned_data`` holds both dates and ``range`` (the quick range that is
    exactly the period, given or not, else ""); ``period`` and ``comparison`` (what the
    period is compared with: periods.comparison_period)."""

    start_name = "from"
    end_name = "to"
    max_days = MAX_DAILY_DAYS
    reversed_message = RANGE_REVERSED
    too_long_message = RANGE_TOO_LONG

    period: periods.Period
    comparison: periods.Period

    def clean(self):
        data = super().clean()
        if self.errors:  # a field that did not parse: its error says so
            return data
        today = periods.today_utc()
        quick = data.get(QUICK) or ""
        if quick:
            period = periods.quick_range(quick, today=today)
        else:
            end = data.get(self.end_name) or today
            start = data.get(self.start_name) or end - timedelta(days=DEFAULT_DAYS - 1)
            if start > end:
                raise ValidationError(self.reversed_message, code="reversed")
            period = periods.Period(start, end)
            if period.days > self.max_days:
                raise ValidationError(self.too_long_message, code="too_long")
            quick = periods.quick_range_of(period, today=today) or ""
        self.period = period
        self.comparison = periods.comparison_period(period, quick=quick or None)
        data[self.start_name], data[self.end_name], data[QUICK] = period.start, period.end, quick
        return data

    def error_text(self) -> str:
        """Every error on one line, each field's named: the CSV exports' 400 answer."""
        return " ".join(self.error_messages())

    def error_messages(self) -> list[str]:
        """Every error, each field's named: what the page says above its default range."""
        messages = [str(error) for error in self.non_field_errors()]
        for name, field in self.fields.items():
            label = field.label or "Quick range"
            messages += [
                str(error) if name == QUICK else f"{label}: {error}"
                for error in self.errors.get(name, [])
            ]
        return messages


class UsageRangeForm(RangeFormMixin, forms.Form):
    """The user's usage range from the query string: ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` or
    ``?range=7d``; dates between witchcraft.platform.form_fields.FIRST_DAY and LAST_DAY."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these fields cannot be declared as class attributes.
        self.fields["from"] = Day(
            required=False, label="From", widget=forms.DateInput({"type": "date"})
        )
        self.fields["to"] = Day(
            required=False, label="To", widget=forms.DateInput({"type": "date"})
        )
        self.fields[QUICK] = quick_range_field()


def range_form(form_class, query) -> tuple[forms.Form, list[str]]:
    """``query`` validated by ``form_class`` (a RangeFormMixin form); when it is refused, its
    error messages and the form of the default range instead (so the page still shows
    something), else no messages."""
    form = form_class(query)
    if form.is_valid():
        return form, []
    default = form_class({})
    if not default.is_valid():  # pragma: no cover - the defaults are always valid
        raise RuntimeError(default.errors)
    return default, form.error_messages()


def shown_form(form_class, form: forms.Form) -> forms.Form:
    """A form to draw: ``form``'s values with the dates of the range in force, also when they
    came from a quick range or the defaults (and no quick range: the links carry that)."""
    initial = {name: form.cleaned_data.get(name) for name in form.fields if name != QUICK}
    return form_class(initial=initial)


@dataclass(frozen=True)
class QuickLink:
    name: str
    label: str
    href: str
    current: bool


def quick_links(path: str, *, current: str, keep: dict[str, str] | None = None) -> list[QuickLink]:
    """The quick-range links of a page at ``path``; ``keep``: the other filters each carries."""
    keep = {name: value for name, value in (keep or {}).items() if value not in (None, "")}
    return [
        QuickLink(
            name=name,
            label=label,
            href=f"{path}?{urlencode({**keep, QUICK: name})}",
            current=name == current,
        )
        for name, label in periods.QUICK_RANGES.items()
    ]


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
