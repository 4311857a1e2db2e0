"""The Django admin site, with its sign-in run in the service context.

Signing in reads the account by email before anyone is known, which the row-level-security
policies (rightly) forbid to an anonymous request; DESIGN.md sends such work through an
explicit service context.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from witchcraft import rls


class WitchcraftAdminSite(admin.AdminSite):
    site_header = "Witchcraft administration"
    site_title = "Witchcraft admin"

    def login(self, request, extra_context=None):
        with rls.service_context():
            return super().login(request, extra_context)


class WitchcraftAdminConfig(AdminConfig):
    default_site = "witchcraft.admin_site.WitchcraftAdminSite"
