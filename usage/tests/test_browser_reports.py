"""A staff member opens the monthly report in Chromium: the users-by-plan chart is drawn, and
the month picker shows another month. The screenshot is saved (SCREENSHOTS_DIR=docs/screenshots
refreshes the one the README's screenshots folder holds)."""

import os
from datetime import date
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import User
from usage import monthly_reports
from usage.tests.test_dashboard_reports import APRIL, MARCH, paid, subscribe, used
from witchcraft.testing.factories import UserFactory
from witchcraft.tests.test_browser_dashboard import CANVAS_HAS_PIXELS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "the staff member's passphrase"


@pytest.fixture
def stored_reports():
    """March and April stored; the report rows removed afterwards (the table is made by SQL,
    so the flush after a transactional test does not empty it)."""
    for n, (slug, since) in enumerate([("pro", 1), ("free", 1), ("team", 2), ("free", 3)]):
        user = UserFactory(email=f"user{n}@example.com")
        subscribe(user, slug, date(2026, since, 1))
        used(user, MARCH, requests=5 + n, cost=f"{n}.50")
        used(user, APRIL, requests=8 + 2 * n, cost=f"{n + 1}.25")
        paid(user, date(2026, 4, 2), "20.00")
    for month in (MARCH, APRIL):
        monthly_reports.monthly_report_generate(month=month)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM usage_monthly_reports")


def test_the_monthly_report_in_the_browser(page, live_server, tmp_path, stored_reports):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/reports/?month=2026-04")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/reports/?month=2026-04")

    canvas = page.locator("canvas[data-chart=chart-plans]")
    assert canvas.evaluate(CANVAS_HAS_PIXELS)
    assert page.locator("#plans tbody tr").count() == 3  # free, pro, team
    page.screenshot(path=str(shots / "dashboard-reports.png"), full_page=True)

    page.fill("input[name=month]", "2026-03")
    page.click("#report-month button[type=submit]")
    page.wait_for_url("**/dashboard/reports/?month=2026-03")
    assert "2026-03 (UTC) against 2026-02" in page.locator("#report-about").inner_text()
