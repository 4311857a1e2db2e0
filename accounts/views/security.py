"""``/me/security/`` and ``/me/tokens/``: the signed-in user's security pages (thin views).

The security page holds the password, the signed-in devices, two-factor sign-in and recent
security events; the API tokens have their own page. Everything runs in the request's
row-level-security context: the user reads and changes their own rows only. Every change is a
POST (with CSRF) and answers with the page again, or a redirect back to it.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from accounts import devices, passwords, selectors, tokens
from accounts import scopes as vocabulary
from accounts.forms import days_field, scope_choices
from witchcraft.platform import refusals
from witchcraft.platform.me_pages import register_page, self_service

register_page("accounts:security", "Security")
register_page("accounts:me_tokens", "API tokens")

# Messages shown to people (S105 mistakes words like "password" in them for secrets).
PASSWORD_CHANGED = "Your password is changed. Any reset link you asked for no longer works."  # noqa: S105
OTHER_SESSIONS_ENDED = "Your other devices were signed out."
TOKENS_REVOKED = "Your API tokens were revoked."
END_OTHER_SESSIONS_LABEL = "Sign out my other devices"
REVOKE_TOKENS_LABEL = "Revoke my API tokens"
SESSION_REVOKED = "That device is signed out."
TOKEN_REVOKED = "The token is revoked: it no longer works."  # noqa: S105
TOKEN_NOT_FOUND = "There is no such active token."  # noqa: S105
PASSWORDS_DIFFER = "The two new passwords differ."
NOT_WHILE_IMPERSONATING = "Passwords and API tokens cannot be changed while impersonating a user."

# The tokens page lists the most recent ones (active first): at most MAX_ACTIVE_TOKENS are
# active, and the daily maintenance deletes expired and long-revoked ones.
TOKENS_SHOWN = 50

# Hashing is deliberately slow: a megabyte "password" must not reach it.
PASSWORD_MAX_LENGTH = 1024


class _PageForm(forms.Form):
    """A form of the security page, which holds several: each has its own element ids."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class PasswordChangeForm(_PageForm):
    id_prefix = "pw"
    current_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label="New password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common or all-numeric password.",
    )
    new_password_again = forms.CharField(
        label="New password, again",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    # Ticked unless the user unticks them: whoever may know the old password (a thief's session
    # or token) loses it with the change.
    end_other_sessions = forms.BooleanField(
        label=END_OTHER_SESSIONS_LABEL,
        required=False,
        initial=True,
        help_text="Every browser signed in to your account but this one must sign in again.",
    )
    revoke_tokens = forms.BooleanField(
        label=REVOKE_TOKENS_LABEL,
        required=False,
        initial=True,
        help_text="Apps and scripts using your API tokens stop working until given new ones.",
    )

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("new_password_again"):
            self.add_error("new_password_again", PASSWORDS_DIFFER)
        return data


class TokenForm(_PageForm):
    """A new token: its name, the scopes it holds (by default the client app's) and its
    lifetime (at most ACCESS_TOKEN_MAX_TTL_DAYS)."""

    id_prefix = "tk"
    name = forms.CharField(
        label="Token name",
        max_length=tokens.NAME_MAX_LENGTH,
        help_text="What it is for, e.g. “laptop” or “CI”.",
    )
    scopes = forms.MultipleChoiceField(
        label="What it may do",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = scope_choices(vocabulary.user_token_scopes())
        self.fields["scopes"].initial = vocabulary.ordered(vocabulary.default_client_scopes())
        most = tokens.max_ttl_days()
        self.fields["ttl_days"] = days_field(
            label="Lifetime (days)", most=most, initial=min(settings.ACCESS_TOKEN_TTL_DAYS, most)
        )


def _user_agent(request) -> str:
    return request.headers.get("User-Agent", "")


def _impersonating(request) -> bool:
    return bool(getattr(request.user, "is_hijacked", False))


def _page(request, *, password_form=None):
    user_id = request.user.pk
    return render(
        request,
        "accounts/security.html",
        {
            "events": selectors.security_events(user_id=user_id, limit=20),
            "sessions": selectors.security_sessions(
                user_id=user_id, current_session_key=request.session.session_key, limit=20
            ),
            "password_form": password_form or PasswordChangeForm(),
        },
    )


def _tokens_page(request, *, token_form=None, issued=None):
    """The tokens page; with ``issued``, a token just created and its raw value, shown once."""
    return render(
        request,
        "me/tokens.html",
        {
            "tokens": selectors.security_tokens(user_id=request.user.pk, limit=TOKENS_SHOWN),
            "tokens_shown": TOKENS_SHOWN,
            "token_form": token_form or TokenForm(),
            "can_create_tokens": request.user.email_verified_at is not None,
            "tokens_unverified": tokens.EMAIL_UNVERIFIED,
            "token_max_ttl_days": tokens.max_ttl_days(),
            "issued": issued,
        },
    )


def _back(anchor: str):
    return redirect(f"{reverse('accounts:security')}#{anchor}")


def _back_to_tokens():
    return redirect(f"{reverse('accounts:me_tokens')}#tokens")


@never_cache
@require_safe
@self_service
def security_page(request):
    return _page(request)


@never_cache
@require_POST
@self_service
def password_change(request):
    if _impersonating(request):
        messages.error(request, NOT_WHILE_IMPERSONATING)
        return _back("password")
    form = PasswordChangeForm(request.POST)
    if form.is_valid():
        try:
            user = passwords.password_change(
                user_id=request.user.pk,
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"],
                keep_session_key=request.session.session_key,
                user_agent=_user_agent(request),
                end_other_sessions=form.cleaned_data["end_other_sessions"],
                revoke_tokens=form.cleaned_data["revoke_tokens"],
            )
        except passwords.PasswordChangeError as refused:
            refusals.form_add_refusal(form, refused)
        else:
            devices.session_renew(request, user)
            done = [PASSWORD_CHANGED]
            if form.cleaned_data["end_other_sessions"]:
                done.append(OTHER_SESSIONS_ENDED)
            if form.cleaned_data["revoke_tokens"]:
                done.append(TOKENS_REVOKED)
            messages.success(request, " ".join(done))
            return _back("password")
    return _page(request, password_form=form)


@require_POST
@self_service
def session_revoke(request, ref: str):
    try:
        devices.session_revoke(
            user_id=request.user.pk,
            ref=ref,
            current_session_key=request.session.session_key,
            user_agent=_user_agent(request),
        )
    except devices.SessionError as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, SESSION_REVOKED)
    return _back("devices")


# --- /me/tokens/ -------------------------------------------------------------------------------


@never_cache
@require_safe
@self_service
def tokens_page(request):
    return _tokens_page(request)


@never_cache
@require_POST
@self_service
def token_create(request):
    if _impersonating(request):
        messages.error(request, NOT_WHILE_IMPERSONATING)
        return _back_to_tokens()
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            issued = tokens.token_issue(
                user_id=request.user.pk,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                ttl_days=form.cleaned_data["ttl_days"],
                user_agent=_user_agent(request),
            )
        except tokens.TokenError as refused:
            refusals.form_add_refusal(form, refused)
        else:
            # Rendered, not redirected: the raw token must not wait in a session or a cookie.
            return _tokens_page(request, issued=issued)
    return _tokens_page(request, token_form=form)


@require_POST
@self_service
def token_revoke(request, token_id: int):
    if tokens.token_revoke(
        user_id=request.user.pk, token_id=token_id, user_agent=_user_agent(request)
    ):
        messages.success(request, TOKEN_REVOKED)
    else:
        messages.error(request, TOKEN_NOT_FOUND)
    return _back_to_tokens()
