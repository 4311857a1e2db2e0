"""A staff member in Chromium acts as a user from the 360° page: lands on the user's overview
with the banner, views a page, stops and is back on the 360° page; the trail has it all."""

import os
from pathlib import Path

import pytest

from accounts import audit, impersonation
from accounts.models import AuditLog, User
from witchcraft.testing.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "the staff member's passphrase"


def test_act_as_a_user_from_the_360_page_and_stop(page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    ada = UserFactory(email="ada@example.com", full_name="Ada Example")
    staff = User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/users/{ada.pk}/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/users/{ada.pk}/")

    page.once("dialog", lambda dialog: dialog.accept())  # the shared data-confirm script
    page.click("#impersonate-form button")
    page.wait_for_url(f"{live_server.url}/me/")
    banner = page.locator("#impersonation-banner")
    assert banner.is_visible()
    assert "ada@example.com" in banner.inner_text()
    assert "staff@example.com" in banner.inner_text()
    page.screenshot(path=str(shots / "impersonation-desktop.png"), full_page=True)

    page.goto(f"{live_server.url}/me/security/")
    assert page.locator("#impersonation-banner").is_visible()
    page.click("#impersonation-banner button:has-text('Stop')")
    page.wait_for_url(f"{live_server.url}/dashboard/users/{ada.pk}/")
    assert not page.locator("#impersonation-banner").count()
    assert page.locator("#user-email").inner_text() == "ada@example.com"

    rows = list(AuditLog.objects.filter(user=ada, actor_id=staff.pk).order_by("id"))
    assert [(r.event_type, r.details.get("path")) for r in rows] == [
        (audit.IMPERSONATION_STARTED, None),
        (impersonation.PAGE_VIEWED, "/me/"),
        (impersonation.PAGE_VIEWED, "/me/security/"),
        (audit.IMPERSONATION_ENDED, None),
    ]
