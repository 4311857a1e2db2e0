"""A staff member in Chromium finds users from the dashboard's search box: part of one user's
email lands on that user's 360° page in one step; a search with several matches shows the
directory, whose column headers sort it. Screenshots of the directory at desktop and phone
widths (set SCREENSHOTS_DIR to keep them)."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from accounts.models import User
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.testing.factories import catalog_model

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "the staff member's passphrase"


def _customers() -> list[User]:
    """Three customers with different costs this month (the cheapest first)."""
    model = catalog_model()
    now = datetime.now(UTC)
    customers = []
    for n, (email, name) in enumerate(
        [
            ("ada.lovelace@analytical.example", "Ada Lovelace"),
            ("grace.hopper@navy.example", "Grace Hopper"),
            ("alan.turing@bletchley.example", "Alan Turing"),
        ]
    ):
        user = User.objects.create_user(email=email, password=PASSWORD, full_name=name)
        with transaction.atomic(), rls.service_context():
            usage_services.usage_record(
                user_id=user.pk,
                provider_id=model.provider_id,
                model_id=model.pk,
                input_tokens=1000,
                output_tokens=500,
                cost=Decimal(n + 1),
                latency_ms=300,
                created_at=now - timedelta(minutes=5),
            )
        customers.append(user)
    return customers


def _row_emails(page) -> list[str]:
    return page.locator("#directory tbody tr td:first-child a").all_inner_texts()


def test_staff_find_a_user_from_the_search_box(page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    ada, grace, alan = _customers()
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size({"width": 1400, "height": 1000})

    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/")

    # Part of one user's email, Enter: their 360° page, in one step.
    box = page.locator(".dashboard-nav .dashboard-search input[name=q]")
    box.fill("hopper@navy")
    box.press("Enter")
    page.wait_for_url(f"{live_server.url}/dashboard/users/{grace.pk}/")
    assert page.locator("h1").inner_text().count("grace.hopper@navy.example") == 1

    # Several matches: the directory, the box filled, then sorted by a header's click.
    box = page.locator(".dashboard-nav .dashboard-search input[name=q]")
    box.fill(".example")
    box.press("Enter")
    page.wait_for_url("**/dashboard/users/?q=.example")
    assert page.locator(".dashboard-nav .dashboard-search input[name=q]").input_value() == (
        ".example"
    )
    assert sorted(_row_emails(page)) == sorted([ada.email, grace.email, alan.email])
    page.click("#directory thead a[data-sort=cost]")
    page.wait_for_url("**/dashboard/users/?q=.example&sort=cost")
    assert _row_emails(page) == [ada.email, grace.email, alan.email]
    page.click("#directory thead a[data-sort=cost]")
    page.wait_for_url("**/dashboard/users/?q=.example&sort=-cost")
    assert _row_emails(page) == [alan.email, grace.email, ada.email]
    page.screenshot(path=str(shots / "users-desktop.png"), full_page=True)

    # At phone width the page does not scroll sideways: the table scrolls in its own box.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.locator("div.table-scroll > table#directory").count() == 1
    # Nothing of the page's own content (the dashboard's navigation with its search box, the
    # directory) runs past the screen: the table scrolls inside its box (the site's header is
    # the layout's, not this page's).
    wide = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
            .filter(e => !e.closest('.table-scroll') || e.matches('.table-scroll'))
            .filter(e => e.getBoundingClientRect().right > 391)
            .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert wide == []
    scroller = page.locator("div.table-scroll")
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")  # the table is wider
    page.screenshot(path=str(shots / "users-phone.png"), full_page=True)

    # The email in a row opens the 360° page.
    page.click(f"#directory a:text-is('{ada.email}')")
    page.wait_for_url(f"{live_server.url}/dashboard/users/{ada.pk}/")
