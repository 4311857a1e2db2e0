"""Two-factor sign-in pages: the second sign-in step, setting up an authenticator app, new
recovery codes, turning it off (thin views over accounts.twofactor)."""

import functools
from urllib.parse import urlencode

import django_otp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import login, twofactor
from witchcraft.platform import refusals
from witchcraft.platform.ratelimit import rate_limited

PENDING_EXPIRED = "That sign-in took too long. Please sign in again."
TURNED_OFF = "Two-factor sign-in is off."


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=32,
        label="Code",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


class PasswordForm(forms.Form):
    password = forms.CharField(
        label="Current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(twofactor.PASSWORD_WRONG)
        return password


def _safe(request, target: str, fallback: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _user_agent(request) -> str:
    return request.headers.get("User-Agent", "")


def _not_while_impersonating(view):
    """A staff member impersonating a user must not set up, see or remove that user's second
    factor (an app of their own would outlast the impersonation)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request.user, "is_hijacked", False):
            messages.error(request, twofactor.NOT_WHILE_IMPERSONATING)
            return redirect("accounts:security")
        return view(request, *args, **kwargs)

    return wrapper


def _confirm_with_code(request):
    """Changing a second factor that is on takes a session that has passed it: a session that
    predates it (or a staff session after impersonating) confirms a code first."""
    messages.info(request, twofactor.CONFIRM_WITH_CODE)
    query = urlencode({"next": reverse("accounts:two_factor_setup")})
    return redirect(f"{reverse('accounts:login_2fa')}?{query}")


def _private(response):
    """Secrets and recovery codes are never cached by the browser or a proxy."""
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response


@require_http_methods(["GET", "POST"])
@rate_limited("login")
def login_2fa(request):
    """The second sign-in step; also confirms a signed-in session that has not passed it (staff
    sent here from the admin)."""
    had_pending = twofactor.PENDING_USER in request.session
    user = twofactor.pending_user(request)
    signed_in = user is None
    if signed_in:
        if not request.user.is_authenticated:
            if had_pending:
                messages.error(request, PENDING_EXPIRED)
            return redirect("accounts:login")
        next_url = _safe(
            request, request.GET.get("next", ""), resolve_url(settings.LOGIN_REDIRECT_URL)
        )
        if request.user.is_verified() or not twofactor.two_factor_enabled(user=request.user):
            return redirect(next_url)
        user = request.user
    else:
        next_url = _safe(
            request,
            request.session.get(twofactor.PENDING_NEXT, ""),
            resolve_url(settings.LOGIN_REDIRECT_URL),
        )
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        verified = twofactor.second_factor_check(request, user=user, code=form.cleaned_data["code"])
        if verified is None:
            form.add_error(None, twofactor.CODE_INVALID)
        else:
            device, method = verified
            if not signed_in:
                login.login_complete(request, user, method=method)
                twofactor.pending_clear(request)
            django_otp.login(request, device)
            return redirect(next_url)
    return render(request, "accounts/login_2fa.html", {"form": form, "signed_in": signed_in})


def _recovery_codes_page(request, codes: list[str], next_url: str = ""):
    response = render(
        request,
        "accounts/two_factor_recovery_codes.html",
        {"codes": codes, "next": next_url or reverse("accounts:security")},
    )
    return _private(response)


def _manage_page(request, *, codes_form=None, disable_form=None):
    user = request.user
    return render(
        request,
        "accounts/two_factor_manage.html",
        {
            "codes_left": twofactor.recovery_codes_left(user=user),
            "must_keep": user.is_staff and settings.STAFF_2FA_REQUIRED,
            "codes_form": codes_form or PasswordForm(user, prefix="codes"),
            "disable_form": disable_form or PasswordForm(user, prefix="disable"),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
@_not_while_impersonating
def two_factor_setup(request):
    """Set up an authenticator app (QR code and key, confirmed by a code from it); when it is
    already on, the page to get new recovery codes or turn it off."""
    if twofactor.two_factor_enabled(user=request.user):
        if not request.user.is_verified():
            return _confirm_with_code(request)
        return _manage_page(request)
    next_url = _safe(request, request.GET.get("next", ""), "")
    device = twofactor.totp_device_for_setup(user=request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = twofactor.two_factor_enable(
                user=request.user, code=form.cleaned_data["code"], user_agent=_user_agent(request)
            )
        except twofactor.TwoFactorRefused as refused:
            refusals.form_add_refusal(form, refused)
        else:
            django_otp.login(request, device)  # this session has just passed a code
            return _recovery_codes_page(request, codes, next_url)
    response = render(
        request,
        "accounts/two_factor_setup.html",
        {
            "form": form,
            "qr_uri": twofactor.totp_qr_data_uri(device),
            "secret": twofactor.totp_secret_base32(device),
        },
    )
    return _private(response)


@require_POST
@login_required
@_not_while_impersonating
@rate_limited("login")
def two_factor_recovery_codes(request):
    """Replace the recovery codes (current password required); show the new ones once."""
    if not twofactor.two_factor_enabled(user=request.user):
        return redirect("accounts:two_factor_setup")
    if not request.user.is_verified():
        return _confirm_with_code(request)
    form = PasswordForm(request.user, request.POST, prefix="codes")
    if not form.is_valid():
        return _manage_page(request, codes_form=form)
    codes = twofactor.recovery_codes_regenerate(user=request.user, user_agent=_user_agent(request))
    return _recovery_codes_page(request, codes)


@require_POST
@login_required
@_not_while_impersonating
@rate_limited("login")
def two_factor_disable(request):
    """Turn two-factor sign-in off (current password required)."""
    if not twofactor.two_factor_enabled(user=request.user):
        return redirect("accounts:two_factor_setup")
    if not request.user.is_verified():
        return _confirm_with_code(request)
    form = PasswordForm(request.user, request.POST, prefix="disable")
    if not form.is_valid():
        return _manage_page(request, disable_form=form)
    try:
        twofactor.two_factor_disable(user=request.user, user_agent=_user_agent(request))
    except twofactor.TwoFactorRefused as refused:
        messages.error(request, refused.message)
        return redirect("accounts:two_factor_setup")
    request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
    messages.success(request, TURNED_OFF)
    return redirect("accounts:security")
