"""Admin behaviour shared by the apps."""

import warnings

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import DataError, router, transaction

from witchcraft.platform.api_types import storable_text


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only or derived data: it can be looked at, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SafeChangeList(ChangeList):
    """A change list that answers filter values the database cannot take (NUL characters, a
    year past 9999, a naive or overflowing datetime, a number beyond its column) the way the
    admin answers any bad filter: a redirect to ``?e=1`` (IncorrectLookupParameters), never a
    500."""

    def get_filters(self, request):
        for key, values in self.filter_params.items():
            for value in [key, *values]:
                try:
                    storable_text(str(value))
                except ValueError as exc:
                    raise IncorrectLookupParameters(exc) from exc
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as exc:  # the date hierarchy's arithmetic
            raise IncorrectLookupParameters(exc) from exc

    def get_queryset(self, request, exclude_parameters=None):
        # A filter's value is prepared for its column here (a naive datetime only warns).
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                return super().get_queryset(request, exclude_parameters)
        except (OverflowError, ValueError, RuntimeWarning) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_results(self, request):
        # The filtered count is the first query: a value the database refuses fails it, in a
        # savepoint so that the request's transaction stays usable.
        try:
            with transaction.atomic(using=router.db_for_read(self.model)):
                super().get_results(request)
        except (DataError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class SafeChangeListAdmin:
    """Mixed into every ModelAdmin of the site (witchcraft.platform.admin_site): its change list is
    a SafeChangeList."""

    def get_changelist(self, request, **kwargs):
        return SafeChangeList
