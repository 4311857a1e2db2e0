import unicodedata

from django import forms
from django.conf import settings
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    UserChangeForm,
)
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from accounts import passwords, scopes, timezones
from accounts.models import User


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class AdminPasswordForm(AdminPasswordChangeForm):
    """The admin's password form: Django's (a new password twice, or password sign-in disabled)
    and what else the change ends, ticked by default. Saved by accounts.passwords.password_set,
    the self-service page's service, never by ``save()``."""

    end_other_sessions = forms.BooleanField(
        label="Sign out the account's devices",
        required=False,
        initial=True,
        help_text="Every session of this account ends (yours stays, if it is your own account).",
    )
    revoke_tokens = forms.BooleanField(
        label="Revoke the account's API tokens",
        required=False,
        initial=True,
        help_text="Service credentials are not touched: they are not the account's.",
    )

    def save(self, commit=True, *, keep_session_key=None, user_agent="", by_staff=True):
        """Save through accounts.passwords.password_set, never Django's ``user.save()`` (which
        writes every users column; the runtime role may write only a few). Returns the user
        and what was ended; raises passwords.PasswordChangeError as the service does."""
        data = self.cleaned_data
        return passwords.password_set(
            user_id=self.user.pk,
            new_password=data["password1"] if data["set_usable_password"] else None,
            keep_session_key=keep_session_key,
            user_agent=user_agent,
            end_other_sessions=data["end_other_sessions"],
            revoke_tokens=data["revoke_tokens"],
            by_staff=by_staff,
        )


class RegisterForm(forms.Form):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200, required=False, label="Full name")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common or all-numeric password.",
    )


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=254)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class EmailForm(forms.Form):
    email = forms.EmailField(max_length=254)


class NewPasswordForm(forms.Form):
    password = forms.CharField(
        label="New password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common or all-numeric password.",
    )
    password_again = forms.CharField(
        label="New password, again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


# --- self-service pages (/me/) -------------------------------------------------------------

TEXT_INVALID = "Line breaks and control characters are not allowed here."
AVATAR_URL_INVALID = "Enter a web address starting with http:// or https://."
TIMEZONE_INVALID = "Choose a time zone from the list."
LOCALE_INVALID = "Choose a language from the list."
# Hashing is deliberately slow: a megabyte "password" must not reach it.
PASSWORD_MAX_LENGTH = 1024


def _no_control_characters(value: str) -> None:
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in value):
        raise ValidationError(TEXT_INVALID, code="control_characters")


class HttpURLField(forms.URLField):
    """A web address: http or https only (no ftp:, javascript:, data: ...)."""

    default_validators = [URLValidator(schemes=["http", "https"])]
    default_error_messages = {"invalid": AVATAR_URL_INVALID}


def _language_choices() -> list[tuple[str, str]]:
    return [(code, f"{name} ({code})") for code, name in settings.LANGUAGES]


class ProfileForm(forms.Form):
    """``/me/profile/``: the time zone is an IANA name (the zones of ``zoneinfo``), the locale
    one of ``settings.LANGUAGES``."""

    full_name = forms.CharField(
        label="Full name", max_length=200, required=False, validators=[_no_control_characters]
    )
    display_name = forms.CharField(
        label="Display name",
        max_length=120,
        required=False,
        validators=[_no_control_characters],
        help_text="Optional: a shorter name you go by.",
    )
    avatar_url = HttpURLField(
        label="Avatar URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="A link to your picture (http:// or https://).",
    )
    company = forms.CharField(
        label="Company", max_length=200, required=False, validators=[_no_control_characters]
    )
    timezone = forms.ChoiceField(
        label="Time zone",
        choices=timezones.timezone_choices,
        error_messages={"invalid_choice": TIMEZONE_INVALID},
        help_text="Dates and times on your pages are shown in it.",
    )
    locale = forms.ChoiceField(
        label="Language",
        choices=_language_choices,
        error_messages={"invalid_choice": LOCALE_INVALID},
    )


class AccountDeleteForm(forms.Form):
    """``/me/delete/``: the current password confirms it is the owner."""

    password = forms.CharField(
        label="Your current password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def scope_choices(allowed) -> list[tuple[str, str]]:
    """Checkbox choices for the scopes in ``allowed``, in the vocabulary's order, described."""
    return [(s, f"{s} — {scopes.DESCRIPTIONS[s]}") for s in scopes.ALL if s in allowed]


def days_field(*, label: str, most: int, initial: int) -> forms.IntegerField:
    """A lifetime in days, 1 to ``most`` (a setting read when the form is made)."""
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=most,
        initial=initial,
        help_text=f"At most {most} days.",
    )


class ServiceCredentialIssueForm(forms.Form):
    """Staff issue a service credential (the admin): its name, scopes and lifetime."""

    name = forms.CharField(
        max_length=100, help_text="Which backend uses it, e.g. “AI gateway (production)”."
    )
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        most = settings.SERVICE_CREDENTIAL_MAX_TTL_DAYS
        self.fields["scopes"].choices = scope_choices(scopes.SERVICE_SCOPES)
        self.fields["scopes"].initial = list(scopes.SERVICE_SCOPES)
        self.fields["days"] = days_field(label="Lifetime (days)", most=most, initial=most)
