"""A staff member in Chromium acts where the problem is seen: on a user's 360° page they change
the plan (accepting the confirmation), see the new plan and the plan event in the audit trail
(the page's own and /dashboard/audit/), and raise a limit until a date and see it. Screenshots
``user-actions-desktop.png`` and ``user-actions-phone.png`` (390 px wide: the actions fit)."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accounts.models import User
from billing.models import SubscriptionTier, UserQuota
from billing.services import QUOTA_LIMIT_RAISED, TIER_CHANGED
from witchcraft.testing.factories import UserFactory, quota_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "the staff member's passphrase"
NOTHING_WIDER_THAN_THE_SCREEN = """(selector) => [...document.querySelectorAll(selector)]
    .filter(e => e.getBoundingClientRect().left < 0
                 || e.getBoundingClientRect().right > window.innerWidth)
    .map(e => e.tagName + "#" + e.id + "." + e.className)"""


def _accept_confirm(page):
    # The shared script asks confirm() on forms with data-confirm; harmless if it is absent.
    page.once("dialog", lambda dialog: dialog.accept())


def test_staff_act_on_the_user_page(page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    customer = UserFactory(email="grace@example.com", full_name="Grace Example")
    quota = quota_for(customer, "free")
    UserQuota.objects.filter(pk=quota.pk).update(tokens_used=int(quota.tokens_limit * 0.9))
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    pro = SubscriptionTier.objects.get(slug="pro")
    user_url = f"{live_server.url}/dashboard/users/{customer.pk}/"

    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/users/{customer.pk}/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(user_url)

    # Change the plan.
    page.select_option("#action-plan select[name=tier]", "pro")
    _accept_confirm(page)
    page.click("#action-plan button[type=submit]")
    page.wait_for_url(f"{user_url}#actions")
    assert page.locator(".messages").inner_text().count("is now on pro") == 1
    assert pro.name in page.locator("#plan").inner_text()
    assert TIER_CHANGED in page.locator("#audit").inner_text()
    page.goto(f"{live_server.url}/dashboard/audit/")
    assert TIER_CHANGED in page.locator("main").inner_text()

    # Raise the token limit until a date.
    page.goto(user_url)
    until = (datetime.now(UTC) + timedelta(days=5)).replace(second=0, microsecond=0)
    page.fill("#action-raise input[name=tokens_limit]", str(pro.monthly_token_limit * 2))
    page.fill("#action-raise input[name=until]", until.strftime("%Y-%m-%dT%H:%M"))
    _accept_confirm(page)
    page.click("#action-raise button[type=submit]")
    page.wait_for_url(f"{user_url}#actions")
    raised = page.locator("#quota-raise").inner_text()
    assert until.strftime("%Y-%m-%d %H:%M") in raised
    assert f"{pro.monthly_token_limit * 2:,}" in raised
    assert QUOTA_LIMIT_RAISED in page.locator("#audit").inner_text()
    assert UserQuota.objects.get(pk=customer.pk).raised_until == until
    page.locator("#actions").screenshot(path=str(shots / "user-actions-desktop.png"))

    # A bad date: the form says so, nothing written.
    page.fill("#action-raise input[name=tokens_limit]", str(pro.monthly_token_limit * 3))
    page.fill("#action-raise input[name=until]", "2001-01-01T00:00")
    _accept_confirm(page)
    page.click("#action-raise button[type=submit]")
    page.wait_for_load_state()
    assert "must be in the future" in page.locator("#action-raise").inner_text()
    assert UserQuota.objects.get(pk=customer.pk).raised_tokens_limit == pro.monthly_token_limit * 2

    # On a phone: the actions fit, the page does not scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{user_url}#actions")
    # Nothing of the actions (nor the message after one) reaches past the screen's edge. (The
    # site's header and the page's older tables are the layout's: their scroll is checked by
    # the layout's own browser test.)
    assert page.evaluate(NOTHING_WIDER_THAN_THE_SCREEN, "#actions, #actions *, .messages *") == []
    box = page.locator("#actions").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(shots / "user-actions-phone.png"), full_page=True)
