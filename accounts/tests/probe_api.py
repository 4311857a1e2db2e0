"""A probe API for the scope and service-credential tests: one operation per scope of the
vocabulary, one that declares none, one that needs a second scope inside the view; each answers
what the request and the database believe (and checks that the database was told whether the
request may record: ``app.may_record``) (mounted under /api/probe/, where the bearer
middleware runs, beside the real URLs: ``pytest.mark.urls("accounts.tests.probe_api")``)."""

from django.db import connection
from django.urls import include, path

from accounts import scopes
from accounts.bearer import require_scope, scoped, undeclared
from billing.throttle import TierRateThrottle
from witchcraft.api import WitchcraftAPI, api

probe = WitchcraftAPI(
    title="probe",
    version="probe",
    urls_namespace="probe",
    auth=undeclared(),
    throttle=[TierRateThrottle()],
)
for exception, handler in api._exception_handlers.items():
    probe.add_exception_handler(exception, handler)


def identity(request) -> dict:
    """What the request carries and what row-level security lets it see."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auth.user_id(), auth.is_admin(),"
            " (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM users),"
            " current_setting('app.may_record', true)"
        )
        user_id, is_admin, visible_users, database_may_record = cursor.fetchone()
    assert database_may_record == ("true" if request.may_record else "false")
    return {
        "user_id": user_id,
        "is_admin": is_admin,
        "visible_users": visible_users,
        "may_record": request.may_record,
        "scopes": scopes.ordered(request.scopes),
    }


def _operation_needing(scope: str) -> None:
    def view(request):
        return identity(request)

    view.__name__ = f"needs_{scope.replace('.', '_')}"
    probe.get(f"/needs/{scope}", auth=scoped(scope))(view)


for _scope in scopes.ALL:
    _operation_needing(_scope)


@probe.get("/undeclared")
def forgot_its_scope(request):
    return {}


@probe.post("/agents-with-usage", auth=scoped(scopes.AGENTS))
def agents_with_usage(request):
    require_scope(request, scopes.USAGE_RECORD)
    return identity(request)


urlpatterns = [path("api/probe/", probe.urls), path("", include("witchcraft.urls"))]
