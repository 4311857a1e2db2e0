"""Forms of the user's agent pages (``/me/sessions/``): the list's filters, message feedback."""

from __future__ import annotations

from django import forms

from agents.models import AgentFeedback, AgentSession
from agents.selectors import decode_cursor
from agents.services import AgentError

# A search longer than any title could never match: refuse it instead of running it.
SEARCH_MAX_LENGTH = AgentSession._meta.get_field("title").max_length
CURSOR_MAX_LENGTH = 200  # a cursor is ~60 characters; the API takes up to 200 as well
# The model's comment is unbounded text; the API (FeedbackIn) takes at most this many characters.
COMMENT_MAX_LENGTH = 5_000
CATEGORY_MAX_LENGTH = AgentFeedback._meta.get_field("category").max_length

# Ratings are 1 to 5 (agent_feedback_rating_range); a thumb is one end of that scale.
THUMB_RATINGS = {"up": 5, "down": 1}
RATINGS = range(1, 6)

BAD_PAGE_LINK = "This page link is not valid: start again from the first page."
NO_RATING = "Choose thumbs up, thumbs down or a rating from 1 to 5."
RATING_CONFLICT = (
    "Thumbs up is a rating of 5 and thumbs down a rating of 1: "
    "leave the rating empty or choose the matching one."
)

STATUS_ALL, STATUS_ACTIVE, STATUS_ENDED = "all", "active", "ended"


class SessionFilterForm(forms.Form):
    """The GET filters of the session list: title search, status, and the page's cursor."""

    q = forms.CharField(
        label="Title contains", required=False, max_length=SEARCH_MAX_LENGTH, strip=True
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[(STATUS_ALL, "All"), (STATUS_ACTIVE, "Active"), (STATUS_ENDED, "Ended")],
    )
    cursor = forms.CharField(required=False, max_length=CURSOR_MAX_LENGTH, strip=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "f-%s")
        super().__init__(*args, **kwargs)

    def clean_status(self) -> str:
        return self.cleaned_data["status"] or STATUS_ALL

    def clean_cursor(self) -> str:
        cursor = self.cleaned_data["cursor"]
        if cursor:
            try:
                decode_cursor(cursor)
            except AgentError:
                raise forms.ValidationError(BAD_PAGE_LINK, code="cursor") from None
        return cursor

    @property
    def active(self) -> bool | None:
        """True (active only), False (ended only) or None (all), from a valid form."""
        return {STATUS_ACTIVE: True, STATUS_ENDED: False}.get(self.cleaned_data["status"])

    @property
    def filtered(self) -> bool:
        """Whether a valid form narrows the list (a search or a status)."""
        return bool(self.cleaned_data["q"]) or self.cleaned_data["status"] != STATUS_ALL


class FeedbackForm(forms.Form):
    """Feedback on an assistant message: a thumb (its submit buttons) or a 1-5 rating, with an
    optional comment. ``cleaned_data["rating"]`` is the 1-5 rating to store."""

    thumb = forms.ChoiceField(
        required=False, choices=[("up", "Thumbs up"), ("down", "Thumbs down")]
    )
    rating = forms.TypedChoiceField(
        label="Rating",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—"), *((value, f"{value} of 5") for value in RATINGS)],
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # Set by the client app through the API; carried along so that a thumb given here, which
    # replaces the whole feedback, does not erase it.
    category = forms.CharField(
        required=False, max_length=CATEGORY_MAX_LENGTH, widget=forms.HiddenInput
    )

    def __init__(self, *args, message_id: int, **kwargs):
        # Several of these forms are on one page: element ids name their message.
        kwargs.setdefault("auto_id", f"fb{message_id}-%s")
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        thumb, rating = data.get("thumb"), data.get("rating")
        if thumb:
            if rating is not None and rating != THUMB_RATINGS[thumb]:
                raise forms.ValidationError(RATING_CONFLICT, code="conflict")
            rating = THUMB_RATINGS[thumb]
        if rating is None:
            raise forms.ValidationError(NO_RATING, code="required")
        data["rating"] = rating
        return data
