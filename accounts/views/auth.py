"""Sign-up, sign-in, sign-out, password reset and email verification pages (thin views)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import audit, login, recovery, registration, services, twofactor
from accounts.forms import EmailForm, LoginForm, NewPasswordForm, RegisterForm
from witchcraft.platform import refusals, rls
from witchcraft.platform.ratelimit import rate_limited

# The same words whether or not the address has an account (no enumeration).
CHECK_INBOX = "Check your inbox: we sent a link to confirm your address."
RESET_SENT = "If an account uses that address, we sent it a link to reset the password."
VERIFIED = "Thank you: your email address is confirmed."
RESENT = "We sent you a new confirmation link."
SIGNED_OUT = "You are signed out."
PENDING_2FA = "pending_2fa_user_id"


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_http_methods(["GET", "POST"])
@rate_limited("register")
def register(request):
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            registration.registration_submit(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
                ip=rls.client_ip(request),
            )
        except services.RegistrationError as refused:
            refusals.form_add_refusal(form, refused)
            return render(request, "accounts/register.html", {"form": form})
        # The same answer whether or not the address was taken (no enumeration).
        return render(request, "accounts/check_inbox.html", {"message": CHECK_INBOX})
    return render(request, "accounts/register.html", {"form": form})


@require_http_methods(["GET", "POST"])
@rate_limited("login")
def login_view(request):
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = login.login_check(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            ip=rls.client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        if user is None:
            form.add_error(None, login.INVALID_CREDENTIALS)
        elif twofactor.requires_second_factor(user):
            request.session[PENDING_2FA] = user.pk
            request.session["pending_2fa_next"] = _safe_next(request, "")
            twofactor.pending_stamp(request)
            return redirect("accounts:login_2fa")
        else:
            login.login_complete(request, user)
            return redirect(_safe_next(request, resolve_url(settings.LOGIN_REDIRECT_URL)))
    return render(request, "accounts/login.html", {"form": form, "next": _safe_next(request, "")})


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        user_id = request.user.pk
        audit.audit_event(
            audit.LOGOUT, user_id=user_id, user_agent=request.headers.get("User-Agent", "")
        )
        logout(request)
        messages.success(request, SIGNED_OUT)
    return redirect("accounts:login")


@require_http_methods(["GET", "POST"])
@rate_limited("password_reset")
def password_reset_request(request):
    form = EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        recovery.password_reset_request(email=form.cleaned_data["email"], ip=rls.client_ip(request))
        return render(request, "accounts/check_inbox.html", {"message": RESET_SENT})
    return render(request, "accounts/password_reset.html", {"form": form})


@require_http_methods(["GET", "POST"])
def password_reset_confirm(request, token: str):
    if recovery.password_reset_token_user(raw_token=token) is None:
        return render(
            request, "accounts/link_invalid.html", {"message": recovery.LINK_INVALID}, status=400
        )
    form = NewPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recovery.password_reset_confirm(raw_token=token, password=form.cleaned_data["password"])
        except ValidationError as exc:
            form.add_error("password", exc)
        else:
            messages.success(request, "Your password is changed. Please sign in with it.")
            return redirect("accounts:login")
    return render(request, "accounts/password_reset_confirm.html", {"form": form})


@require_http_methods(["GET"])
def verification_confirm(request, token: str):
    if recovery.verification_confirm(raw_token=token) is None:
        return render(
            request, "accounts/link_invalid.html", {"message": recovery.LINK_INVALID}, status=400
        )
    messages.success(request, VERIFIED)
    return redirect("accounts:security" if request.user.is_authenticated else "accounts:login")


@require_POST
@login_required
@rate_limited("verification_resend")
def verification_resend(request):
    if request.user.email_verified_at is None:
        recovery.verification_send(user_id=request.user.pk, ip=rls.client_ip(request))
    messages.success(request, RESENT)
    return redirect(_safe_next(request, reverse("accounts:security")))
