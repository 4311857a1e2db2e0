"""A staff member in Chromium: signs in, opens every dashboard page (charts drawn), filters the
audit trail, impersonates a user and stops. Each page's screenshot is saved (set
SCREENSHOTS_DIR=docs/screenshots to refresh the ones the README shows)."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from accounts.models import User
from agents.models import AgentMessage, AgentSession
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.testing.factories import AuditLogFactory, UserFactory, catalog_model, quota_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "the staff member's passphrase"
PAGES = [
    ("overview", "/dashboard/"),
    ("usage", "/dashboard/usage/"),
    ("quotas", "/dashboard/quotas/"),
    ("audit", "/dashboard/audit/"),
    ("agents", "/dashboard/agents/"),
    ("monitoring", "/dashboard/monitoring/"),
]
CANVAS_HAS_PIXELS = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { return true; } }
    return false;
}"""


def _some_activity() -> User:
    """A user with a month of usage over two models, a quota near its limit, an agent session
    and a few security events."""
    user = UserFactory(email="ada@example.com", full_name="Ada Example")
    quota = quota_for(user, "free")
    now = datetime.now(UTC)
    with transaction.atomic(), rls.service_context():
        for day in range(20):
            for n, name in enumerate(("gpt-5-mini", "claude-haiku-4-5")):
                model = catalog_model(name)
                usage_services.usage_record(
                    user_id=user.pk,
                    provider_id=model.provider_id,
                    model_id=model.pk,
                    input_tokens=800 + 40 * day,
                    output_tokens=300 + 10 * n,
                    latency_ms=600 + 20 * day,
                    request_id=f"seed-{day}-{n}",
                    status="error" if (day + n) % 7 == 0 else "success",
                    created_at=now - timedelta(days=day, minutes=n),
                )
    quota.refresh_from_db()
    type(quota).objects.filter(pk=quota.pk).update(
        tokens_used=int(quota.tokens_limit * 0.9), cost_used=Decimal("0.5")
    )
    session = AgentSession.objects.create(user=user, title="Plan a trip")
    for position, (role, content) in enumerate(
        [("user", "Where should I go in May?"), ("assistant", "Lisbon, <script>x</script>")], 1
    ):
        AgentMessage.objects.create(
            session=session, user=user, role=role, content=content, position=position
        )
    for event in ("login_succeeded", "login_failed", "password_changed"):
        AuditLogFactory(
            user=user,
            event_type=event,
            severity="warning" if event != "login_succeeded" else "info",
        )
    return user


def test_staff_dashboard_in_the_browser(page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    customer = _some_activity()
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size({"width": 1400, "height": 1000})

    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")

    for name, path in PAGES:
        page.goto(live_server.url + path)
        assert page.locator(".dashboard-nav").is_visible(), name
        for canvas in page.locator("canvas[data-chart]").all():
            assert canvas.evaluate(CANVAS_HAS_PIXELS), f"an empty chart on {path}"
        page.screenshot(path=str(shots / f"dashboard-{name}.png"), full_page=True)
    page.goto(f"{live_server.url}/dashboard/")
    assert page.locator("canvas[data-chart]").count() >= 2  # the overview's charts

    # A filter changes the table.
    page.goto(f"{live_server.url}/dashboard/audit/")
    rows_before = page.locator("table tbody tr").count()
    page.fill("input[name=event_type]", "login_failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert 0 < page.locator("table tbody tr").count() < rows_before

    # The transcript shows a user's markup as text.
    page.goto(f"{live_server.url}/dashboard/agents/")
    page.click("text=Plan a trip")
    assert page.is_visible("text=Lisbon, <script>x</script>")
    page.screenshot(path=str(shots / "dashboard-agent-session.png"), full_page=True)

    # Impersonate the customer from the admin, see the banner, stop.
    page.goto(f"{live_server.url}/admin/accounts/user/{customer.pk}/change/")
    page.click("#impersonate-form button")
    page.wait_for_selector("text=You are acting as")
    assert page.is_visible("text=ada@example.com")
    page.screenshot(path=str(shots / "impersonation-banner.png"))
    page.click("button:has-text('Stop')")
    page.wait_for_load_state()
    assert not page.is_visible("text=You are acting as")
