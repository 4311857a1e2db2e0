"""The staff dashboard's agent pages: ``/dashboard/agents/`` and one session's page."""

import json
from decimal import Decimal, InvalidOperation

from django.http import Http404
from django.shortcuts import render

from agents import dashboard_selectors as selectors
from agents.models import AgentSession
from witchcraft.staff import dashboard_page, staff_required

dashboard_page("dashboard:agents", "Agent sessions")


def _page(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def _filters(params) -> selectors.SessionFilters:
    active = {"yes": True, "no": False}.get(params.get("active", ""))
    try:
        model_id = int(params["model"]) if params.get("model") else None
    except ValueError:
        model_id = None
    try:
        min_rating = Decimal(params["rating"]) if params.get("rating") else None
    except InvalidOperation:
        min_rating = None
    if min_rating is not None and not min_rating.is_finite():
        min_rating = None
    return selectors.SessionFilters(
        email=params.get("email", "").strip()[:254],
        active=active,
        model_id=model_id,
        min_rating=min_rating,
    )


@staff_required
def agents(request):
    filters = _filters(request.GET)
    listing = selectors.session_list(filters=filters, page=_page(request.GET.get("page")))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/agents.html",
        {
            "listing": listing,
            "filters": filters,
            "models": selectors.model_choices(),
            "query": query.urlencode(),
            "filtered": any(
                (filters.email, filters.active is not None, filters.model_id, filters.min_rating)
            ),
        },
    )


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@staff_required
def agent_session(request, session_id: int):
    try:
        transcript = selectors.session_transcript(
            session_id=session_id, page=_page(request.GET.get("page"))
        )
    except AgentSession.DoesNotExist:
        raise Http404 from None
    tool_calls = [
        {
            "call": call,
            "arguments": _pretty(call.arguments),
            "result": None if call.result is None else _pretty(call.result),
        }
        for call in transcript.tool_calls
    ]
    return render(
        request,
        "dashboard/agent_session.html",
        {
            "t": transcript,
            "session": transcript.session,
            "tool_calls": tool_calls,
            "page_size": selectors.TRANSCRIPT_PAGE_SIZE,
        },
    )
