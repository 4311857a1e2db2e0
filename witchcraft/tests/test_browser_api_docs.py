"""The interactive API documentation renders in a browser (under the site's CSP), and a token
pasted into its "Authorize" dialog is sent by "Try it out"."""

import os
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import scopes, tokens
from witchcraft.api import SECURITY_SCHEME
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, quota_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_the_api_docs_render_the_operations(page, live_server):
    blocked: list[str] = []
    page.on(
        "console", lambda msg: blocked.append(msg.text) if "Content Security" in msg.text else None
    )
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector("text=Witchcraft API")
    page.wait_for_selector(".opblock-summary-path:has-text('/api/v1/auth/login')")
    assert page.locator(".opblock").count() >= 5
    assert not blocked, blocked


def test_token_operations_name_the_bearer_scheme_and_public_ones_do_not(client):
    document = client.get("/api/v1/openapi.json").json()
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = document["paths"]
    assert paths["/api/v1/quota"]["get"]["security"] == [{SECURITY_SCHEME: [scopes.USAGE_READ]}]
    assert paths["/api/v1/auth/logout"]["post"]["security"] == [{SECURITY_SCHEME: []}]
    for public in (("post", "/api/v1/auth/register"), ("post", "/api/v1/auth/login")):
        assert "security" not in paths[public[1]][public[0]], public
    for path, item in paths.items():
        for method, operation in item.items():
            if "x-required-scope" in operation:
                assert operation["security"][0].keys() == {SECURITY_SCHEME}, (method, path)


def _token_for_a_user_with_a_quota() -> str:
    user = UserFactory(email="docs@example.com", email_verified_at=timezone.now())
    quota_for(user, "free")
    with transaction.atomic(), rls.user_context(user):
        return tokens.token_issue(user_id=user.pk, name="api docs", scopes=[scopes.USAGE_READ]).raw


def test_authorize_with_a_token_then_try_an_operation(page, live_server, tmp_path):
    raw = _token_for_a_user_with_a_quota()
    sent: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.headers.get("authorization"))
            if request.url.endswith("/api/v1/quota")
            else None
        ),
    )
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path:has-text('/api/v1/quota')")

    # The document declares the bearer scheme, so Swagger UI offers "Authorize".
    page.click("button.authorize")
    dialog = page.locator(".dialog-ux .modal-ux")
    dialog.locator("input[type=text], input[type=password]").first.fill(raw)
    dialog.locator("button.authorize[type=submit], button:has-text('Authorize')").first.click()
    assert dialog.locator("button:has-text('Logout')").is_visible()
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    page.screenshot(path=str(shots / "api-docs-authorize.png"))
    dialog.locator("button:has-text('Close')").first.click()

    # The operation shows a closed padlock, and "Try it out" sends the token.
    operation = page.locator(".opblock-get:has(.opblock-summary-path[data-path='/api/v1/quota'])")
    assert (
        operation.locator(
            "button.authorization__btn[aria-label='authorization button locked']"
        ).count()
        == 1
    )
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table tbody .microlight").first.inner_text()
    assert '"limit"' in body
    assert sent == [f"Bearer {raw}"]
    page.screenshot(path=str(shots / "api-docs-try-it-out.png"), full_page=True)
