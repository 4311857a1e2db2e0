"""``/me/profile/``: the user's name, avatar, company, time zone and language (thin views)."""

from dataclasses import asdict

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import audit, profiles, timezones
from accounts.forms import ProfileForm
from witchcraft.platform.me_pages import register_page, self_service

register_page("accounts:me_profile", "Profile")

PROFILE_SAVED = "Your profile is saved."
PROFILE_UNCHANGED = "Your profile is unchanged: nothing was different."


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@self_service
def profile_page(request):
    """Show the profile form; a valid POST saves it and comes back here, an invalid one shows
    the errors (400) and writes nothing."""
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            changed = profiles.profile_update(
                user_id=request.user.pk,
                **form.cleaned_data,
                user_agent=audit.request_user_agent(request),
            )
            timezones.remember_timezone(request, form.cleaned_data["timezone"])
            messages.success(request, PROFILE_SAVED if changed else PROFILE_UNCHANGED)
            return redirect("accounts:me_profile")
        return render(request, "me/profile.html", {"form": form}, status=400)
    form = ProfileForm(initial=asdict(profiles.profile_for(user_id=request.user.pk)))
    return render(request, "me/profile.html", {"form": form})
