"""Every page of ours on a phone (390 x 844, issue 19): the page never scrolls sideways (wide
tables scroll inside their own box), "Sign out" stays in view, and a token's "Revoke" asks
first. Each page's screenshot is saved as <area>-<page>-phone.png (set SCREENSHOTS_DIR to
keep them)."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import AccessToken, User
from agents.models import AgentMessage, AgentSession
from billing.models import PaymentHistory, UsageAlert
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.testing.factories import AuditLogFactory, UserFactory, catalog_model, quota_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a phone-sized passphrase"
PHONE = {"width": 390, "height": 844}
LONG_EMAIL = "ada.lovelace.with.a.really.long.address.for.phones@analytical-engines.example.com"

# The widest element sticking out of the viewport that is not inside a box that scrolls or
# clips on its own (a table in .table-scroll may be wider than the phone: that is the point).
WIDEST = """() => {
  const limit = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === "auto" || x === "scroll" || x === "hidden" || x === "clip") { return true; }
    }
    return false;
  };
  let worst = null;
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= limit + 0.5 || clipped(el)) { continue; }
    if (!worst || box.right > worst.right) {
      const cls = typeof el.className === "string" ? el.className : "";
      worst = {right: Math.round(box.right), tag: el.tagName.toLowerCase(), id: el.id,
               cls: cls, text: (el.textContent || "").trim().slice(0, 60)};
    }
  }
  return worst;
}"""
FITS = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _customer() -> tuple[User, int, int]:
    """A verified user with a long address, three weeks of usage over two models, a quota near
    its limit with an alert, two payments, an active API token and an agent session; return
    the user, the token's id and the session's id."""
    user = UserFactory(
        email=LONG_EMAIL,
        full_name="Ada Lovelace",
        password=PASSWORD,
        email_verified_at=timezone.now(),
    )
    quota = quota_for(user, "free")
    now = datetime.now(UTC)
    with transaction.atomic(), rls.service_context():
        for day in range(21):
            for n, name in enumerate(("gpt-5-mini", "claude-haiku-4-5")):
                model = catalog_model(name)
                usage_services.usage_record(
                    user_id=user.pk,
                    provider_id=model.provider_id,
                    model_id=model.pk,
                    input_tokens=900_000 + 40 * day,
                    output_tokens=300_000 + 10 * n,
                    latency_ms=600 + 20 * day,
                    request_id=f"phone-{day}-{n}",
                    status="error" if (day + n) % 7 == 0 else "success",
                    created_at=now - timedelta(days=day, minutes=n),
                )
    type(quota).objects.filter(pk=quota.pk).update(
        tokens_used=int(quota.tokens_limit * 0.9), cost_used=quota.cost_limit * Decimal("0.85")
    )
    assert UsageAlert.objects.filter(user=user).exists()  # raised by the quota update
    for n, amount in enumerate((Decimal("20"), Decimal("1234.5"))):
        PaymentHistory.objects.create(
            user=user,
            amount=amount,
            currency="USD",
            status="succeeded",
            description="Pro plan, monthly — a long description that must wrap on a phone",
            payment_provider="stripe",
            provider_payment_id=f"pi_phone_{n}_0123456789abcdefghijklmnopqrstuvwxyz",
        )
    with transaction.atomic(), rls.user_context(user):
        token_id = tokens.token_issue(user_id=user.pk, name="CI pipeline").token.pk
    session = AgentSession.objects.create(user=user, title="Plan a trip to Lisbon in May")
    for position, (role, content) in enumerate(
        [
            ("user", "Where should I go in May? " + "a-very-long-word-without-spaces" * 6),
            ("assistant", "Lisbon: warm, not yet crowded.\n" + "x" * 300),
        ],
        1,
    ):
        AgentMessage.objects.create(
            session=session, user=user, role=role, content=content, position=position
        )
    for event in ("login_succeeded", "login_failed", "password_changed"):
        AuditLogFactory(user=user, event_type=event, user_agent="Mozilla/5.0 " + "Phone " * 20)
    return user, token_id, session.pk


def _today() -> str:
    """Today's UTC day, of which the customer has requests (the request logs' day)."""
    return datetime.now(UTC).date().isoformat()


def _sign_in(page, live_server, email: str, password: str, next_path: str) -> None:
    page.goto(f"{live_server.url}/auth/login/?next={next_path}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path}")


def _check(page, live_server, shots: Path, area: str, name: str, path: str, *, sign_out=None):
    """Open ``path`` on the phone: no sideways scrolling, the sign-out button in view (when
    ``sign_out`` names its selector); save the screenshot."""
    response = page.goto(live_server.url + path)
    assert response is not None and response.status == 200, (path, response and response.status)
    page.wait_for_load_state("load")
    scroll_width, inner_width = page.evaluate(FITS)
    assert scroll_width <= inner_width, (
        f"{path} scrolls sideways ({scroll_width} px > {inner_width} px); the widest element: "
        f"{page.evaluate(WIDEST)}"
    )
    if sign_out:
        page.evaluate("window.scrollTo(0, 0)")
        button = page.locator(sign_out).first
        assert button.is_visible(), f"no sign-out button on {path}"
        box = button.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (path, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (path, box)
    page.screenshot(path=str(shots / f"{area}-{name}-phone.png"), full_page=True)


def test_every_page_of_a_user_fits_a_phone(page, live_server, tmp_path):
    shots = _shots(tmp_path)
    user, token_id, session_id = _customer()
    page.set_viewport_size(PHONE)

    for name, path in [
        ("sign-in", "/auth/login/"),
        ("register", "/auth/register/"),
        ("password-reset", "/auth/password-reset/"),
    ]:
        _check(page, live_server, shots, "accounts", name, path)

    _sign_in(page, live_server, user.email, PASSWORD, "/me/")
    header_sign_out = "header button:has-text('Sign out')"
    for name, path in [
        ("overview", "/me/"),
        ("usage", "/me/usage/"),
        ("usage-requests", f"/me/usage/requests/?day={_today()}&provider=openai"),
        ("sessions", "/me/sessions/"),
        ("session", f"/me/sessions/{session_id}/"),
        ("plan", "/me/plan/"),
        ("payments", "/me/payments/"),
        ("tokens", "/me/tokens/"),
        ("profile", "/me/profile/"),
        ("export", "/me/export/"),
        ("delete", "/me/delete/"),
    ]:
        _check(page, live_server, shots, "me", name, path, sign_out=header_sign_out)
    for name, path in [
        ("security", "/me/security/"),
        ("two-factor-setup", "/me/security/2fa/"),
    ]:
        _check(page, live_server, shots, "accounts", name, path, sign_out=header_sign_out)

    # Revoking a token asks first: dismissed, nothing happens; accepted, it is revoked.
    page.goto(f"{live_server.url}/me/tokens/")
    row = page.locator("#tokens tr", has_text="CI pipeline")
    questions: list[str] = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_timeout(300)  # a submit, had there been one, would have left by now
    assert questions and "CI pipeline" in questions[0]
    assert page.url == f"{live_server.url}/me/tokens/"
    assert AccessToken.objects.get(pk=token_id).revoked_at is None
    assert row.locator("text=active").count() == 1

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        row.locator("button:has-text('Revoke')").click()
    page.wait_for_selector("#tokens tr:has-text('CI pipeline') >> text=revoked")
    assert AccessToken.objects.get(pk=token_id).revoked_at is not None


def test_every_staff_page_fits_a_phone(page, live_server, tmp_path):
    shots = _shots(tmp_path)
    user, _, session_id = _customer()
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    page.set_viewport_size(PHONE)
    _sign_in(page, live_server, "staff@example.com", PASSWORD, "/dashboard/")

    header_sign_out = "header button:has-text('Sign out')"
    for name, path in [
        ("overview", "/dashboard/"),
        ("users", "/dashboard/users/"),
        ("users-search", "/dashboard/users/?q=example"),
        ("usage", "/dashboard/usage/"),
        ("usage-requests", f"/dashboard/usage/requests/?day={_today()}&provider=openai"),
        ("reports", "/dashboard/reports/"),
        ("quotas", "/dashboard/quotas/"),
        ("audit", "/dashboard/audit/"),
        ("agents", "/dashboard/agents/"),
        ("agent-session", f"/dashboard/agents/{session_id}/"),
        ("monitoring", "/dashboard/monitoring/"),
        ("archive", "/dashboard/archive/"),
        ("user", f"/dashboard/users/{user.pk}/"),
    ]:
        _check(page, live_server, shots, "dashboard", name, path, sign_out=header_sign_out)

    admin_log_out = "#logout-form button"
    for name, path in [
        ("index", "/admin/"),
        ("users", "/admin/accounts/user/"),
        ("quotas", "/admin/billing/userquota/"),
        ("usage-requests", "/admin/usage/aiusagerequest/"),
    ]:
        _check(page, live_server, shots, "admin", name, path, sign_out=admin_log_out)
