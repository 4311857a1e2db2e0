"""The user's agent pages: ``/me/sessions/`` (their sessions), one session's transcript, and
feedback on an assistant message.

Every page runs in the request's row-level-security context and also filters by the viewer:
another user's session or message is not found (404), never forbidden (existence does not
leak).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from agents import selectors, services, transcripts
from agents.forms import THUMB_RATINGS, FeedbackForm, SessionFilterForm
from agents.models import AgentMessage, AgentSession, MessageRole
from agents.transcripts import TranscriptEntry
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


def _feedback_form(
    entry: TranscriptEntry, *, failed: FeedbackForm | None, failed_id: int | None
) -> FeedbackForm | None:
    """The feedback form under a message: none for a user's message, the refused one where
    it was refused, else a fresh one showing the viewer's earlier comment and category."""
    message, feedback = entry.message, entry.feedback
    if message.role != MessageRole.ASSISTANT:
        return None
    if failed is not None and message.pk == failed_id:
        return failed
    return FeedbackForm(
        message_id=message.pk,
        initial={
            "comment": feedback.comment if feedback else "",
            "category": feedback.category if feedback else "",
        },
    )


def _session_page(
    request,
    *,
    session_id: int,
    failed: FeedbackForm | None = None,
    failed_id: int | None = None,
) -> HttpResponse:
    """The transcript page; with ``failed``, the feedback form that was refused (answer 400)."""
    try:
        shaped = transcripts.transcript_get(user_id=request.user.pk, session_id=session_id)
    except AgentSession.DoesNotExist:
        raise Http404 from None
    transcript = [
        {
            "message": entry.message,
            "tool_calls": entry.tool_calls,
            "feedback": entry.feedback,
            "form": _feedback_form(entry, failed=failed, failed_id=failed_id),
        }
        for entry in shaped.entries
    ]
    return render(
        request,
        "me/session.html",
        {
            "session": shaped.session,
            "transcript": transcript,
            "truncated": shaped.truncated,
            "detail_limit": selectors.DETAIL_LIMIT,
            "other_tool_calls": shaped.other_tool_calls,
            "session_feedback": shaped.session_feedback,
            "failed": failed,
            "failed_id": failed_id,
            "failed_shown": failed_id in shaped.shown_ids,
            "not_saved": FEEDBACK_NOT_SAVED,
            "thumb_up": THUMB_RATINGS["up"],
            "thumb_down": THUMB_RATINGS["down"],
        },
        status=400 if failed is not None else 200,
    )
