"""Drill-down in Chromium (issue 19): a staff member clicks a bar of the usage page's daily
chart and lands on that day's request log for that provider, most expensive first; a user does
the same from /me/usage/. Screenshots: usage-drilldown-desktop.png, request-log-desktop.png,
request-log-phone.png (390 px wide)."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from accounts.models import User
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, catalog_model

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a long enough passphrase"
YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)
NOON = datetime.combine(YESTERDAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)

# The centre of bar `index` of the dataset labelled `label`, in page coordinates (Chart.js's
# own element positions, relative to the canvas).
BAR_CENTRE = """([label, index]) => {
    const canvas = document.getElementById("daily-chart");
    const chart = Chart.getChart(canvas);
    const set = chart.data.datasets.findIndex((d) => d.label === label);
    const bar = chart.getDatasetMeta(set).data[index];
    const box = canvas.getBoundingClientRect();
    return {x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2};
}"""


def _usage(user, model, cost: str, minutes: int):
    with transaction.atomic(), rls.service_context():
        usage_services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=1000 + minutes,
            output_tokens=400,
            latency_ms=300,
            cost=Decimal(cost),
            created_at=NOON + timedelta(minutes=minutes),
        )


def _sign_in(page, url, email, next_path):
    page.goto(f"{url}/auth/login/?next={next_path}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def _click_bar(page, label: str):
    canvas = page.locator("#daily-chart")
    canvas.scroll_into_view_if_needed()
    labels = page.evaluate(
        "() => Chart.getChart(document.getElementById('daily-chart')).data.labels"
    )
    point = page.evaluate(BAR_CENTRE, [label, labels.index(YESTERDAY.isoformat())])
    page.mouse.click(point["x"], point["y"])


def _costs(page) -> list[Decimal]:
    cells = page.locator("#request-log td.cost").all_inner_texts()
    return [Decimal(text.replace("$", "").replace(",", "")) for text in cells]


def test_staff_drill_down_from_a_bar_to_the_request_log(page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    gpt, claude = catalog_model("gpt-5-mini"), catalog_model("claude-haiku-4-5")
    ada = UserFactory(email="ada@example.com")
    for minutes, cost in enumerate(("0.20", "4.00", "1.50")):
        _usage(ada, gpt, cost, minutes)
    _usage(ada, claude, "2.00", 5)
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size({"width": 1400, "height": 1000})
    _sign_in(page, live_server.url, "staff@example.com", "/dashboard/usage/")

    page.locator("#daily").scroll_into_view_if_needed()
    page.locator("#daily").screenshot(path=str(shots / "usage-drilldown-desktop.png"))
    _click_bar(page, gpt.provider.name)
    page.wait_for_url("**/dashboard/usage/requests/**")
    assert f"day={YESTERDAY.isoformat()}" in page.url
    assert f"provider={gpt.provider.slug}" in page.url
    assert _costs(page) == [Decimal("4.00"), Decimal("1.50"), Decimal("0.2000")]
    assert page.locator(".table-scroll #request-log").count() == 1
    page.screenshot(path=str(shots / "request-log-desktop.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.screenshot(path=str(shots / "request-log-phone.png"), full_page=True)


def test_a_user_drills_down_to_their_own_requests(page, live_server):
    gpt = catalog_model("gpt-5-mini")
    ada = UserFactory(email="ada@example.com", password=PASSWORD, email_verified_at=NOON)
    bob = UserFactory(email="bob@example.com")
    _usage(ada, gpt, "0.30", 1)
    _usage(ada, gpt, "0.90", 2)
    _usage(bob, gpt, "5.00", 3)
    page.set_viewport_size({"width": 1280, "height": 900})
    _sign_in(page, live_server.url, "ada@example.com", "/me/usage/")

    _click_bar(page, gpt.provider.name)
    page.wait_for_url("**/me/usage/requests/**")
    assert f"provider={gpt.provider.slug}" in page.url
    assert _costs(page) == [Decimal("0.9000"), Decimal("0.3000")]
    assert "bob@example.com" not in page.content()
