"""The interactive API documentation renders in a browser (under the site's CSP)."""

import pytest

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
