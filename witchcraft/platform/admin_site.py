"""The Django admin site, signed in through the site's own sign-in page.

The admin's own login form would skip what the site's page enforces: the lockout and its audit
rows, the rate limit, and the second factor (accounts.twofactor). So it only sends people there,
with ``next`` pointing back into the admin.
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from witchcraft.platform.admin_mixins import SafeChangeListAdmin


class WitchcraftAdminSite(admin.AdminSite):
    site_header = "Witchcraft administration"
    site_title = "Witchcraft admin"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every ModelAdmin, ours and other apps' (django-otp's), gets the change list that
        refuses filter values the database cannot take (admin_mixins.SafeChangeList)."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, SafeChangeListAdmin):
            admin_class = type(admin_class.__name__, (SafeChangeListAdmin, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)

    def login(self, request, extra_context=None):
        next_url = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = ""
        next_url = next_url or reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return redirect(next_url)
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")


class WitchcraftAdminConfig(AdminConfig):
    default_site = "witchcraft.platform.admin_site.WitchcraftAdminSite"
