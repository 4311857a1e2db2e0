"""The staff dashboard's agent pages: ``/dashboard/agents/`` and one session's page."""

from django import forms
from django.http import Http404
from django.shortcuts import render

from agents import dashboard_selectors as selectors
from agents import transcripts
from agents.models import AgentSession
from witchcraft.platform import replica
from witchcraft.platform.form_fields import Email, Number, WholeNumber
from witchcraft.platform.staff_pages import dashboard_page, staff_required

dashboard_page("dashboard:agents", "Agent sessions")

MAX_PAGE = 100_000


def _page(value: str | None) -> int:
    field = WholeNumber(min_value=1, max_value=MAX_PAGE, required=False)
    try:
        return field.clean(value) or 1
    except forms.ValidationError:
        return 1


class SessionFilterForm(forms.Form):
    """The list's filters; a value it refuses is shown as the field's error and filters
    nothing."""

    email = Email(required=False, label="User email")
    active = forms.ChoiceField(required=False, choices=[("", "any"), ("yes", "yes"), ("no", "no")])
    model = WholeNumber(required=False, min_value=1)
    rating = Number(required=False, min_value=1, max_value=5, decimal_places=1)

    def filters(self) -> selectors.SessionFilters:
        self.is_valid()  # the fields it refused are left out of cleaned_data
        data = self.cleaned_data
        return selectors.SessionFilters(
            email=data.get("email") or "",
            active={"yes": True, "no": False}.get(data.get("active") or ""),
            model_id=data.get("model"),
            min_rating=data.get("rating"),
        )


@staff_required
def agents(request):
    form = SessionFilterForm(request.GET)
    filters = form.filters()
    page = _page(request.GET.get("page"))
    listing = replica.read(request, lambda: selectors.session_list(filters=filters, page=page))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/agents.html",
        {
            "listing": listing,
            "filters": filters,
            "form": form,
            "models": selectors.model_choices(),
            "query": query.urlencode(),
            "filtered": any(
                (filters.email, filters.active is not None, filters.model_id, filters.min_rating)
            ),
        },
    )


@staff_required
def agent_session(request, session_id: int):
    try:
        transcript = transcripts.staff_transcript_get(
            session_id=session_id, page=_page(request.GET.get("page"))
        )
    except AgentSession.DoesNotExist:
        raise Http404 from None
    return render(request, "dashboard/agent_session.html", {"t": transcript})
