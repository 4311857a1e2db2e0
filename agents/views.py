"""The user's agent pages: ``/me/sessions/`` (their sessions), one session's transcript, and
feedback on an assistant message.

Every page runs in the request's row-level-security context and also filters by the viewer:
another user's session or message is not found (404), never forbidden (existence does not
leak).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from agents import selectors, services
from agents.forms import THUMB_RATINGS, FeedbackForm, SessionFilterForm
from agents.models import AgentMessage, AgentSession, MessageRole
from witchcraft.platform.me_pages import register_page, self_service

register_page("agents:me_sessions", "Sessions")

FEEDBACK_SAVED = "Thank you: your feedback is saved."
FEEDBACK_REPLACED = "Your feedback is updated."
FEEDBACK_NOT_SAVED = "Your feedback was not saved."


@never_cache
@require_safe
@self_service
def me_sessions(request):
    form = SessionFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "me/sessions.html", {"form": form, "page": None}, status=400)
    page = selectors.sessions_search(
        user_id=request.user.pk,
        title_contains=form.cleaned_data["q"],
        active=form.active,
        cursor=form.cleaned_data["cursor"] or None,
    )
    # The filters without the cursor: the base of the page links.
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "me/sessions.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "first_page": not form.cleaned_data["cursor"],
        },
    )


@never_cache
@require_safe
@self_service
def me_session(request, session_id: int):
    return _session_page(request, session_id=session_id)


@never_cache
@require_POST
@self_service
def me_feedback(request, session_id: int, message_id: int):
    form = FeedbackForm(request.POST, message_id=message_id)
    if form.is_valid():
        try:
            _, created = services.feedback_give(
                user_id=request.user.pk,
                session_id=session_id,
                message_id=message_id,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
                category=form.cleaned_data["category"],
            )
        except AgentSession.DoesNotExist:
            raise Http404 from None
        except services.AgentError as refused:
            if refused.code == services.NOT_FOUND:
                raise Http404 from None
            form.add_error(None, refused.message)
        else:
            messages.success(request, FEEDBACK_SAVED if created else FEEDBACK_REPLACED)
            url = reverse("agents:me_session", args=[session_id])
            return redirect(f"{url}#message-{message_id}")
    # Not the user's session or message: 404 before any word about the form.
    try:
        message = selectors.session_message_get(
            user_id=request.user.pk, session_id=session_id, message_id=message_id
        )
    except AgentMessage.DoesNotExist:
        raise Http404 from None
    if message.role != MessageRole.ASSISTANT and services.FEEDBACK_NOT_ASSISTANT not in (
        form.non_field_errors()
    ):
        form.add_error(None, services.FEEDBACK_NOT_ASSISTANT)
    return _session_page(request, session_id=session_id, failed=form, failed_id=message_id)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _session_page(
    request,
    *,
    session_id: int,
    failed: FeedbackForm | None = None,
    failed_id: int | None = None,
) -> HttpResponse:
    """The transcript page; with ``failed``, the feedback form that was refused (answer 400)."""
    try:
        detail = selectors.session_detail(user_id=request.user.pk, session_id=session_id)
    except AgentSession.DoesNotExist:
        raise Http404 from None
    shown = {message.pk for message in detail.messages}
    calls_of: dict[int, list[dict]] = defaultdict(list)
    other_calls = []
    for call in detail.tool_calls:
        item = {
            "call": call,
            "arguments": _pretty(call.arguments),
            "result": None if call.result is None else _pretty(call.result),
        }
        if call.message_id in shown:
            calls_of[call.message_id].append(item)
        else:
            other_calls.append(item)
    # The viewer's own feedback only (the selector filters by user): one per message at most.
    feedback_of = {f.message_id: f for f in detail.feedback if f.message_id is not None}
    session_feedback = next((f for f in detail.feedback if f.message_id is None), None)
    transcript = []
    for message in detail.messages:
        feedback = feedback_of.get(message.pk)
        form = None
        if message.role == MessageRole.ASSISTANT:
            if failed is not None and message.pk == failed_id:
                form = failed
            else:
                form = FeedbackForm(
                    message_id=message.pk,
                    initial={
                        "comment": feedback.comment if feedback else "",
                        "category": feedback.category if feedback else "",
                    },
                )
        transcript.append(
            {
                "message": message,
                "tool_calls": calls_of.get(message.pk, []),
                "feedback": feedback,
                "form": form,
            }
        )
    return render(
        request,
        "me/session.html",
        {
            "session": detail.session,
            "transcript": transcript,
            "truncated": detail.messages_truncated,
            "detail_limit": selectors.DETAIL_LIMIT,
            "other_tool_calls": other_calls,
            "session_feedback": session_feedback,
            "failed": failed,
            "failed_id": failed_id,
            "failed_shown": failed_id in shown,
            "not_saved": FEEDBACK_NOT_SAVED,
            "thumb_up": THUMB_RATINGS["up"],
            "thumb_down": THUMB_RATINGS["down"],
        },
        status=400 if failed is not None else 200,
    )
