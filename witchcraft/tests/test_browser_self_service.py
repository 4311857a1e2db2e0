"""A user in Chromium, on their own pages only: sees what they used and what it cost (charts
drawn), reads a transcript, upgrades through the payment provider's checkout and sees the
payment, schedules a cancellation and takes it back, creates a token, downloads their data and
deletes their account. Each page's screenshot is saved (set SCREENSHOTS_DIR=docs/screenshots
to refresh the ones the README shows)."""

import json
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from accounts import services as account_services
from accounts.models import User
from agents import services as agent_services
from billing import webhooks
from billing.models import PaymentHistory, UserQuota
from billing.views import RESUMED
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.testing.factories import catalog_model

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a long and unusual passphrase"
MODELS = ("gpt-5-mini", "claude-haiku-4-5")
CANVAS_HAS_PIXELS = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { return true; } }
    return false;
}"""
WEBHOOK_SECRET = "whsec_browser_test_secret"
CHECKOUT_LINK = "https://checkout.test/pro"
CHECKOUT_PAGE = (
    "<!doctype html><html><head><title>Checkout</title></head>"
    "<body><h1>Fake provider checkout</h1><p>Pay $20.00 a month for Pro.</p></body></html>"
)


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _member(email: str, full_name: str = "Ada Example") -> User:
    """A user registered as the sign-up form does (profile, free quota and subscription),
    with a confirmed address (unconfirmed accounts get no API tokens)."""
    user_id = account_services.user_register(email=email, password=PASSWORD, full_name=full_name)
    User.objects.filter(pk=user_id).update(email_verified_at=timezone.now())
    return User.objects.get(pk=user_id)


def _some_usage(user: User, *, days: int = 20) -> None:
    """``days`` UTC days of requests over two models, recorded as the API records them."""
    now = datetime.now(UTC)
    with transaction.atomic(), rls.service_context():
        for day in range(days):
            for n, name in enumerate(MODELS):
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


def _a_conversation(user: User) -> int:
    """A session with a question holding markup, a metered reply and a finished tool call;
    return its id. Written as the client app writes it, in the user's own context, by a
    credential that may record (the reply carries its usage)."""
    with transaction.atomic(), rls.user_context(user, may_record=True):
        session = agent_services.session_create(
            user_id=user.pk, title="Plan a trip", agent_name="travel", model="gpt-5-mini"
        )
        agent_services.message_add(
            user_id=user.pk,
            session_id=session.pk,
            role="user",
            content="Where should I go in May? <script>alert(1)</script>",
        )
        reply, _ = agent_services.message_add(
            user_id=user.pk,
            session_id=session.pk,
            role="assistant",
            content="Lisbon: warm, not yet crowded.\nBook the train early.",
            usage=agent_services.MessageUsage(
                provider="openai",
                model="gpt-5-mini",
                input_tokens=1200,
                output_tokens=400,
                request_id="trip-reply-1",
                latency_ms=900,
            ),
        )
        call = agent_services.tool_call_start(
            user_id=user.pk,
            session_id=session.pk,
            tool_name="weather.lookup",
            arguments={"city": "Lisbon", "month": 5},
            message_id=reply.pk,
        )
        agent_services.tool_call_finish(
            user_id=user.pk,
            session_id=session.pk,
            call_id=call.pk,
            status="success",
            result={"high_c": 23, "rain_days": 4},
        )
    return session.pk


def _csp_violations(page) -> list[str]:
    """The Content-Security-Policy violations Chromium reports on ``page`` from now on (a
    blocked script, style or form post is a broken page, whatever it looks like)."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def _sign_in(page, live_server, email: str, *, next_path: str = "/me/") -> None:
    page.goto(f"{live_server.url}/auth/login/?next={next_path}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path}")


def _deliver(live_server, event: dict) -> dict:
    """POST ``event`` to the webhook signed as the provider signs it; return the JSON answer."""
    payload = json.dumps(event).encode()
    request = urllib.request.Request(
        f"{live_server.url}/billing/webhooks/stripe/",
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            webhooks.SIGNATURE_HEADER: webhooks.signature_header(
                payload=payload, secret=WEBHOOK_SECRET, timestamp=int(time.time())
            ),
        },
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200
        return json.load(response)


def test_usage_charts_quota_bars_and_a_transcript(page, live_server, tmp_path):
    shots = _shots(tmp_path)
    user = _member("ada@example.com")
    _some_usage(user)
    session_id = _a_conversation(user)
    page.set_viewport_size({"width": 1280, "height": 900})
    csp_violations = _csp_violations(page)
    _sign_in(page, live_server, user.email)

    # The overview: plan, quota bars that show the use, today's and this month's figures.
    assert page.inner_text("#plan-name") == "Free"
    tokens_bar = page.locator("#quota-tokens-bar")
    assert tokens_bar.is_visible()
    assert float(tokens_bar.get_attribute("value")) > 0
    assert page.locator("#quota-cost-bar").is_visible()
    assert page.inner_text("#kpi-month-requests .value") != "0"
    assert page.is_visible("#recent-sessions a:has-text('Plan a trip')")
    page.screenshot(path=str(shots / "me-overview.png"), full_page=True)

    # The usage report: every chart drawn, both models in the breakdown.
    page.click("nav.me-nav a:has-text('Usage')")
    page.wait_for_url(f"{live_server.url}/me/usage/")
    canvases = page.locator("canvas[data-chart]")
    # day by day (by provider, the drill-down's), tokens per day, cost per day, cost per month
    assert canvases.count() == 4
    for canvas in canvases.all():
        assert canvas.evaluate(CANVAS_HAS_PIXELS), canvas.get_attribute("data-chart")
    by_model = page.inner_text("#by-model tbody")
    for name in MODELS:
        assert catalog_model(name).display_name in by_model
    assert page.locator("#by-provider tbody tr").count() == 2
    page.screenshot(path=str(shots / "me-usage.png"), full_page=True)

    # A narrower range redraws the charts with fewer days.
    today = datetime.now(UTC).date()
    page.fill("#usage-range input[name=from]", (today - timedelta(days=6)).isoformat())
    page.click("#usage-range button[type=submit]")
    page.wait_for_url("**/me/usage/?from=*")
    assert page.inner_text("#range").startswith(
        f"From {(today - timedelta(days=6)).isoformat()} to {today.isoformat()}"
    )
    for canvas in page.locator("canvas[data-chart]").all():
        assert canvas.evaluate(CANVAS_HAS_PIXELS), canvas.get_attribute("data-chart")

    # The transcript: the user's markup shown as text, the tool call, feedback given.
    page.click("nav.me-nav a:has-text('Sessions')")
    page.click("#sessions a:has-text('Plan a trip')")
    page.wait_for_url(f"{live_server.url}/me/sessions/{session_id}/")
    assert page.is_visible("text=Where should I go in May? <script>alert(1)</script>")
    assert page.is_visible(".tool-call code:has-text('weather.lookup')")
    reply = page.locator("#transcript li.message-assistant")
    reply.locator("button[aria-label^='Thumbs up']").click()
    page.wait_for_selector("text=Thank you: your feedback is saved.")
    assert page.is_visible("#transcript .feedback-given:has-text('thumbs up')")
    page.screenshot(path=str(shots / "me-session.png"), full_page=True)
    assert csp_violations == []


def test_upgrade_through_checkout_then_cancel_and_keep_the_plan(
    page, live_server, settings, tmp_path
):
    settings.BILLING_PROVIDER = "stripe"
    settings.BILLING_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.BILLING_CHECKOUT_LINKS = {"pro": CHECKOUT_LINK}
    shots = _shots(tmp_path)
    user = _member("grace@example.com", "Grace Example")
    _some_usage(user, days=5)
    used_before = UserQuota.objects.get(user=user).tokens_used
    assert used_before > 0
    page.set_viewport_size({"width": 1280, "height": 900})
    checkouts: list[str] = []

    def provider_checkout(route):
        checkouts.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body=CHECKOUT_PAGE)

    page.route("https://checkout.test/**", provider_checkout)
    csp_violations = _csp_violations(page)
    _sign_in(page, live_server, user.email, next_path="/me/plan/")
    assert "Free" in page.inner_text("#current-heading")

    # Upgrade: the browser lands on the provider's checkout, carrying who pays.
    page.click("#upgrade-pro")
    try:
        page.wait_for_url("https://checkout.test/**")
    except PlaywrightTimeout:
        pytest.fail(f"the browser never reached the checkout: {csp_violations or page.url}")
    assert page.is_visible("text=Fake provider checkout")
    assert len(checkouts) == 1
    sent = urlsplit(checkouts[0])
    assert f"{sent.scheme}://{sent.netloc}{sent.path}" == CHECKOUT_LINK
    assert parse_qs(sent.query) == {
        "client_reference_id": [str(user.pk)],
        "prefilled_email": [user.email],
    }

    # The provider confirms the payment (its webhook); a redelivery changes nothing.
    event = {
        "id": "evt_browser_1",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "cs_1",
                "client_reference_id": str(user.pk),
                "customer": "cus_1",
                "subscription": "sub_1",
                "invoice": "in_1",
                "amount_total": 2000,
                "currency": "usd",
                "payment_status": "paid",
                "metadata": {"tier": "pro"},
            }
        },
    }
    assert _deliver(live_server, event)["outcome"] == webhooks.APPLIED
    assert _deliver(live_server, event)["outcome"] == webhooks.DUPLICATE

    # Back from the checkout: Pro, with Pro's limits, and the tokens used so far kept.
    page.goto(f"{live_server.url}/me/plan/?checkout=done")
    assert page.is_visible("[role=status]:has-text('Thank you')")
    assert page.inner_text("#current-heading").strip() == "Pro"
    current = page.inner_text("#current-plan")
    assert "5,000,000 tokens" in current
    assert "$20.00 USD a month" in current
    assert page.is_visible("#tiers th:has-text('Pro (yours)')")
    quota = UserQuota.objects.get(user=user)
    assert quota.tokens_limit == 5_000_000
    assert quota.tokens_used == used_before
    page.screenshot(path=str(shots / "me-plan.png"), full_page=True)

    page.click("nav.me-nav a:has-text('Overview')")
    assert page.inner_text("#plan-name") == "Pro"

    # The payment, once.
    page.click("nav.me-nav a:has-text('Payments')")
    page.wait_for_url(f"{live_server.url}/me/payments/")
    rows = page.locator("#payments tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "20.00 USD" in row
    assert "Subscription to Pro" in row
    assert "in_1" in row
    assert PaymentHistory.objects.filter(user=user).count() == 1
    page.screenshot(path=str(shots / "me-payments.png"), full_page=True)

    # Cancel at the period's end, then take it back.
    page.click("nav.me-nav a:has-text('Plan')")
    page.once("dialog", lambda dialog: dialog.accept())  # static/js/confirm.js asks first
    page.click("#downgrade-free")
    notice = page.locator("#scheduled-change")
    notice.wait_for()
    assert "Your plan moves to Free" in notice.inner_text()
    assert page.inner_text("#current-heading").strip() == "Pro"  # until the period ends
    notice.locator("button:has-text('Keep Pro')").click()
    page.wait_for_selector(f"text={RESUMED}")
    assert page.locator("#scheduled-change").count() == 0
    assert page.is_visible("#downgrade-free")
    assert UserQuota.objects.get(user=user).tokens_limit == 5_000_000
    assert csp_violations == []


def test_create_a_token_download_the_data_and_leave(page, live_server, settings):
    settings.SITE_URL = live_server.url
    user = _member("lin@example.com", "Lin Example")
    _some_usage(user, days=3)
    csp_violations = _csp_violations(page)
    _sign_in(page, live_server, user.email)

    # A token for the client app: shown once, and it works.
    page.click("nav.me-nav a:has-text('API tokens')")
    page.fill("#tokens input[name=name]", "my laptop")
    page.click("#tokens button:has-text('Create a token')")
    raw = page.inner_text("#raw-token").strip()
    page.click("text=Done")
    assert raw not in page.content()
    me = urllib.request.Request(
        f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {raw}"}
    )
    with urllib.request.urlopen(me, timeout=15) as response:
        assert json.load(response)["email"] == user.email

    # The data, downloaded as one JSON file.
    page.click("nav.me-nav a:has-text('Your data')")
    with page.expect_download() as download_info:
        page.click("#export button:has-text('Download my data')")
    download = download_info.value
    assert download.suggested_filename.startswith(f"witchcraft-export-{user.pk}-")
    data = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert data["user_id"] == user.pk
    assert data["account"]["email"] == user.email
    assert len(data["usage_requests"]) == 3 * len(MODELS)
    assert {row["name"] for row in data["access_tokens"]} == {"my laptop"}
    assert raw not in json.dumps(data)

    # Leaving: a wrong password deletes nothing; the right one deletes and signs out.
    page.click("#delete a:has-text('Delete my account')")
    page.wait_for_url(f"{live_server.url}/me/delete/")
    page.on("dialog", lambda dialog: dialog.accept())  # static/js/confirm.js asks first
    page.fill("input[name=password]", "not my password")
    page.click("#delete button[type=submit]")
    assert page.is_visible("#delete .errorlist")
    assert User.objects.get(pk=user.pk).deleted_at is None
    page.fill("input[name=password]", PASSWORD)
    page.click("#delete button[type=submit]")
    page.wait_for_selector("#deleted:has-text('Your account is deleted')")
    assert User.objects.get(pk=user.pk).deleted_at is not None

    # Gone: the token no longer works, the address and password no longer sign in.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(me, timeout=15)
    assert refused.value.code == 401
    page.goto(f"{live_server.url}/me/")
    page.wait_for_url(f"{live_server.url}/auth/login/?next=/me/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    assert page.is_visible("[role=alert]:has-text('do not match an account')")
    assert csp_violations == []
