"""No 500 for anything a client sends: every page and every API operation, walked with hostile
values (witchcraft.testing.hostile) in each parameter and field it knows, answers without a
server error and writes nothing when it refuses.

Pages come from the URL resolver; the parameters of a page from the forms and ``?...`` links
it renders (and a few names no page knows); the API's operations, parameters and body fields
from its OpenAPI document. Each page or operation is one test; the values are sent in a loop.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AccessToken, User
from agents.models import AgentFeedback, AgentToolCall
from billing.models import UsageAlert
from witchcraft.testing import factories, hostile

pytestmark = pytest.mark.django_db

# Sign-out ends the walking client's session: it is walked last, and signed in again.
SIGN_OUT = {"auth/logout/", "admin/logout/"}
# Tables a request may write whatever it answers: the session store, and the security trail a
# refused sign-in or reset is meant to leave (accounts.audit).
# django-otp counts each wrong code on the device (its throttling).
ADMIN_PARAMS = 4
ALWAYS_WRITTEN = {
    "django_session",
    "user_sessions",
    "audit_logs",
    "otp_totp_totpdevice",
    "otp_static_staticdevice",
}


def _patterns(patterns=None, prefix=""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("api/v1/"):
                continue
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


PAGES = {route: entry for route, entry in _patterns() if not route.startswith("^")}


def _role(route: str) -> str:
    if route.startswith(("dashboard/", "admin/", "hijack/")):
        return "staff"
    if route.startswith("auth/") or route in ("healthz", "metrics"):
        return "anonymous"
    return "member"


# --- the world the walk runs in -------------------------------------------------------------


@pytest.fixture
def world(self_reporting, settings):
    settings.API_RATE_LIMITS = False
    settings.BILLING_PROVIDER = "stripe"
    settings.BILLING_WEBHOOK_SECRET = "whsec_hostile"
    settings.BILLING_CHECKOUT_LINKS = {"pro": "https://checkout.example/pro"}
    staff = User.objects.create_superuser(email="staff@example.com", password="x" * 12)
    member = factories.api_member(email="member@example.com")
    session = factories.AgentSessionFactory(user=member)
    message = factories.AgentMessageFactory(session=session, role="assistant")
    call = AgentToolCall.objects.create(
        session=session, message=message, user=member, tool_name="search", arguments={}
    )
    model = factories.catalog_model()
    factories.usage_request(user=member, model=model, agent_session=session)
    factories.AuditLogFactory(user=member)
    alert = UsageAlert.objects.create(
        user=member,
        alert_type="warning",
        metric="tokens",
        threshold_percent=80,
        period_start=member.quota.period_start,
        value_at_trigger=800,
        limit_at_trigger=1000,
    )
    # One row for more admin pages to open and post to (the rest are walked with an id that
    # names nothing).
    AgentFeedback.objects.create(session=session, message=message, user=member, rating=4)
    Group.objects.create(name="support")
    TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    StaticDevice.objects.create(user=staff, name="backup")
    factories.service_credential(staff=staff)
    return {
        "staff": staff,
        "member": member,
        "session_id": session.pk,
        "message_id": message.pk,
        "call_id": call.pk,
        "alert_id": alert.pk,
        "user_id": member.pk,
        "token_id": AccessToken.objects.filter(user=member).first().pk,
        "id": member.pk,
        "pk": member.pk,
        "provider": "stripe",
        "model": model,
    }


def _client(world, role: str) -> Client:
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(world[role])
    return client


def _admin_object_id(entry) -> str | None:
    model_admin = getattr(entry.callback, "model_admin", None)
    if model_admin is None:
        return None
    obj = model_admin.model._default_manager.order_by("pk").first()
    return "0" if obj is None else str(obj.pk)  # "0": a page for a row that does not exist


def _concrete(route: str, entry, world) -> str | None:
    """The route with each parameter filled with something that exists (None: nothing does)."""
    url = route
    for _converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", route):
        if name == "object_id":  # the admin's "view on site" (admin/r/) names the member
            value = _admin_object_id(entry) or str(world["member"].pk)
        elif name == "content_type_id":
            from django.contrib.contenttypes.models import ContentType

            value = str(ContentType.objects.get_for_model(User).pk)
        elif name in world and not hasattr(world[name], "pk"):
            value = str(world[name])
        else:
            value = "hostile"
        if value is None:
            return None
        url = re.sub(rf"<(?:\w+:)?{name}>", value, url, count=1)
    return "/" + url


class Walk:
    """Sends requests, and keeps what went wrong: a 5xx, or a refusal that wrote rows."""

    def __init__(self, client: Client):
        self.client = client
        self.failures: list[str] = []

    def send(self, method: str, url: str, *, body: str | None = None, json_body=None, **extra):
        cache.clear()  # rate limits must not hide what a value does
        before = hostile.writes()
        if method == "GET":
            response = self.client.get(url, **extra)
        elif json_body is not None:
            response = self.client.generic(
                method, url, json_body.encode("utf-8", "surrogatepass"), "application/json", **extra
            )
        else:
            response = self.client.generic(
                method, url, (body or "").encode(), "application/x-www-form-urlencoded", **extra
            )
        changed = {
            table: n
            for table, n in hostile.written(before, hostile.writes()).items()
            if table not in ALWAYS_WRITTEN
        }
        what = f"{method} {url[:160]} {(body or json_body or '')[:160]!r}"
        if response.status_code >= 500:
            self.failures.append(f"{response.status_code} {what}")
        elif changed and response.status_code >= 400:
            self.failures.append(f"{response.status_code} wrote {changed}: {what}")
        elif changed and _form_errors(response):
            self.failures.append(f"form errors but wrote {changed}: {what}")
        return response


def _form_errors(response) -> bool:
    for context in response.context or []:
        for value in context.flatten().values() if hasattr(context, "flatten") else []:
            if getattr(value, "is_bound", False) and getattr(value, "errors", None):
                return True
    return False


# --- pages -----------------------------------------------------------------------------------


def _walk_form(walk: Walk, form: hostile.Form, *, all_at_once: bool) -> None:
    shown = {name: hostile.plain(value) for name, value in form.fields.items()}
    fixed = {name: hostile.plain(value) for name, value in form.hidden.items()}
    if form.method == "get":
        return
    # Every value in every field at once, then (but for the admin's long forms) one kind of
    # value in one field at a time, the others as shown: a field whose value is refused must
    # not hide what another one does.
    for value in hostile.CORE_FORM_VALUES if all_at_once else hostile.FORM_VALUES:
        walk.send(
            "POST", form.action, body=hostile.encoded_body({**fixed, **dict.fromkeys(shown, value)})
        )
    for value in () if all_at_once else hostile.CORE_FORM_VALUES:
        for name in shown:
            walk.send(
                "POST", form.action, body=hostile.encoded_body({**fixed, **shown, name: value})
            )
    for name in shown:  # a list where one value is expected
        walk.send(
            "POST",
            form.action,
            body=hostile.encoded_body({**fixed, **shown}) + f"&{name}=1&{name}=2",
        )


@pytest.mark.parametrize("route", sorted(PAGES))
def test_no_page_answers_hostile_input_with_a_server_error(route, world):
    entry = PAGES[route]
    url = _concrete(route, entry, world)
    if url is None:
        pytest.fail(f"nothing to fill the parameters of {route} with: add it to the world")
    role = _role(route)
    walk = Walk(_client(world, role))
    page = walk.send("GET", url)
    is_admin = route.startswith("admin/")
    forms, link_params = (
        hostile.forms_of(page.content.decode(errors="replace"), "http://testserver" + url)
        if page.status_code == 200 and "html" in page.get("Content-Type", "")
        else ([], set())
    )
    values = hostile.ADMIN_VALUES if is_admin else hostile.CORE_FORM_VALUES
    if is_admin:
        # The change lists' filters share one guard (witchcraft.platform.admin_mixins): a few of
        # each list's parameters stand for the rest.
        link_params = sorted(link_params)[:ADMIN_PARAMS]
    names = dict.fromkeys(link_params, values)
    for form in forms:
        if form.method == "get" and hostile.same_site_path(form.action) == url:
            names.update(dict.fromkeys([*form.fields, *form.hidden], values))
    names.update(dict.fromkeys(hostile.UNKNOWN_PARAMS, values))
    if route.endswith(("/history/", "/delete/", "<path:object_id>/")):
        names = {}  # the admin's history, delete and redirect pages read no parameter
    for name, sent in sorted(names.items()):
        for value in sent:
            walk.send("GET", f"{url}?{hostile.query(name, value)}")
        walk.send("GET", f"{url}?{hostile.query(name, '1')}&{hostile.query(name, '2')}")
    # Path parameters: numbers beyond every integer type, and text no id is made of.
    for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", route):
        for value in (str(2**63), str(2**31), "9" * 40, "0"):
            walk.send("GET", _concrete(route.replace(f"<{converter}:{name}>", value), entry, world))
        if converter in ("str", "path", "slug", ""):
            for value in ("%00", "x" * 3000, "%ED%A0%80"):
                walk.send(
                    "GET", _concrete(route.replace(f"<{converter}:{name}>", value), entry, world)
                )
    post_forms = [f for f in forms if f.method == "post" and "/logout/" not in f.action]
    if page.status_code == 405:  # POST only: the names it may read are unknown here
        post_forms.append(hostile.Form("post", url, dict.fromkeys(hostile.UNKNOWN_PARAMS, "")))
    if "/delete/" in route and is_admin:
        post_forms = []  # confirming deletes the object: its page's GET is walked above
    seen = set()
    for form in post_forms:
        key = (form.action, tuple(sorted(form.fields)))
        if key in seen:
            continue
        seen.add(key)
        _walk_form(walk, form, all_at_once=is_admin)
    if route in SIGN_OUT:
        for value in hostile.FORM_VALUES[:3]:
            walk.send("POST", url, body=hostile.query("next", value))
    assert not walk.failures, "\n".join(walk.failures[:40])


def test_the_walk_covers_every_page():
    # A guard on the walker itself: the resolver gives it the dashboard, self-service, the
    # admin and the webhook.
    for route in (
        "dashboard/agents/",
        "dashboard/usage/",
        "me/profile/",
        "billing/webhooks/<slug:provider>/",
    ):
        assert route in PAGES
    assert any(route.startswith("admin/accounts/user/") for route in PAGES)
    assert len(PAGES) > 150 - 1 or len(admin.site._registry) < 20


# --- the API ---------------------------------------------------------------------------------


def _openapi() -> dict:
    from witchcraft.api import api

    return api.get_openapi_schema()


OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in _openapi()["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
)


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "allOf"):
        if key in schema:
            first = next((s for s in schema[key] if s.get("type") != "null"), schema[key][0])
            return _resolve(first, document)
    return schema


VALID = {
    "model": "gpt-5-mini",
    "provider": "openai",
    "email": "new-member@example.com",
    "password": "a long passphrase 1234",
    "role": "user",
    "content": "Hello",
    "tool_name": "search",
    "status": "success",
}


def _valid(name: str, schema: dict, document: dict):
    schema = _resolve(schema, document)
    if "enum" in schema:
        return schema["enum"][0]
    if name in VALID:
        return VALID[name]
    if name == "request_id":
        return uuid.uuid4().hex
    return {
        "string": "x",
        "integer": 1,
        "number": 1,
        "boolean": True,
        "array": [],
        "object": {},
    }.get(schema.get("type"), "x")


def _body(schema: dict, document: dict) -> dict:
    schema = _resolve(schema, document)
    return {
        name: _valid(name, prop, document)
        for name, prop in schema.get("properties", {}).items()
        if name in schema.get("required", [])
    }


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_api_operation_answers_hostile_input_with_a_server_error(method, path, world):
    document = _openapi()
    operation = document["paths"][path][method.lower()]
    member = world["member"]
    walk = Walk(Client(raise_request_exception=False))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {member.token}"}
    ids = {name: world[name] for name in ("session_id", "call_id", "token_id")}
    params = operation.get("parameters", [])
    # The token's first use of the minute records it (last_used_at): not the walk's doing.
    walk.client.get("/api/v1/me", **auth)

    def url(path_values=None, query_string=""):
        filled = path
        for name, value in {**{k: str(v) for k, v in ids.items()}, **(path_values or {})}.items():
            filled = filled.replace("{" + name + "}", value)
        return filled + (f"?{query_string}" if query_string else "")

    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    base = _body(content["schema"], document) if content else None

    def send(target, body=None):
        if base is None and method == "GET":
            return walk.send("GET", target, **auth)
        return walk.send(method, target, json_body=body if body is not None else "{}", **auth)

    for param in params:
        name = param["name"]
        for value in hostile.FORM_VALUES:
            if param["in"] == "path":
                send(url({name: value}), json.dumps(base) if base is not None else None)
            elif param["in"] == "query":
                send(url(query_string=hostile.query(name, value)))
        if param["in"] == "query":
            send(url(query_string=f"{hostile.query(name, '1')}&{hostile.query(name, '2')}"))
    if base is not None:
        schema = _resolve(content["schema"], document)
        marker = '"__HOSTILE__"'
        for name in schema.get("properties", {}):
            text = json.dumps({**base, name: "__HOSTILE__"})
            for value in hostile.JSON_VALUES:
                send(url(), text.replace(marker, value))
        for value in hostile.JSON_VALUES:  # the whole body
            send(url(), value)
        send(url(), '{"a": ')  # not JSON
        send(url(), "\udcff")  # not UTF-8
    assert not walk.failures, "\n".join(walk.failures[:40])


# --- the attacker trial's findings, by name -------------------------------------------------


@pytest.fixture
def staff_client(world):
    return _client(world, "staff")


@pytest.mark.parametrize(
    "query",
    ["email=%00", "email=a%00b", "rating=1e999999999", "rating=-1e-999999", "rating=NaN"],
)
def test_the_agents_dashboard_refuses_a_bad_filter_with_a_form_error(staff_client, query):
    response = staff_client.get(f"/dashboard/agents/?{query}")
    assert response.status_code == 200
    assert response.context["form"].errors
    assert b'id="filter-errors"' in response.content


@pytest.mark.parametrize("query", ["end=0001-01-01", "start=0001-01-01", "end=10000-01-01"])
def test_the_usage_dashboard_refuses_a_day_out_of_range(staff_client, query):
    response = staff_client.get(f"/dashboard/usage/?{query}")
    assert response.status_code == 200
    # A form error above the default range (the last 30 days), which the page still shows.
    assert response.context["range_errors"]
    assert b'id="range-errors"' in response.content
    flt = response.context["tables"]["filter"]
    assert (flt.end - flt.start).days == 29
    assert staff_client.get(f"/dashboard/usage.csv?{query}").status_code == 400


@pytest.mark.parametrize("query", ["until=0001-01-01T00%3A00", "since=9999-12-31T23%3A59"])
def test_the_audit_trail_refuses_an_instant_out_of_range(staff_client, query):
    response = staff_client.get(f"/dashboard/audit/?{query}")
    assert response.status_code == 200
    assert response.context["form"].errors


@pytest.mark.parametrize(
    "query",
    [
        "acknowledged_at__gte=0001-01-01",
        "triggered_at__year=2147483648",
        "triggered_at__year=9999",
        "metric__exact=%00",
    ],
)
def test_an_admin_filter_the_database_cannot_take_is_the_admins_bad_filter_redirect(
    staff_client, query
):
    response = staff_client.get(f"/admin/billing/usagealert/?{query}")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    "event_id", ["evt_\\u0000", "\\u0000", "evt_\\ud800"], ids=["nul", "only-nul", "surrogate"]
)
def test_a_signed_webhook_whose_event_id_postgresql_cannot_store_is_refused(
    client, world, event_id
):
    from billing import webhooks
    from billing.models import BillingWebhookEvent

    created = int(timezone.now().timestamp())
    payload = (
        f'{{"id": "{event_id}", "type": "invoice.paid", "created": {created},'
        ' "data": {"object": {"subscription": "sub_1"}}}'
    ).encode()
    header = webhooks.signature_header(payload=payload, secret="whsec_hostile", timestamp=created)
    before = BillingWebhookEvent.objects.count()
    response = client.post(
        "/billing/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": header},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid", "message": webhooks.NOT_JSON}
    assert BillingWebhookEvent.objects.count() == before
