"""Issue 19: destructive forms ask first (data-confirm, answered by static/js/confirm.js), and
the admin writes figures for people: money with money_text, ratios as percentages."""

import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import tokens, twofactor
from accounts.models import User
from accounts.services import user_register
from agents.models import VisibleAgentSessionStats
from billing.models import PaymentHistory, SubscriptionTier, UsageAlert, UserQuota
from usage.models import AIUsageDaily
from witchcraft.platform import rls
from witchcraft.platform.admin_columns import metric_column, money_column, percent_column
from witchcraft.testing.factories import UserFactory, quota_for

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # the factory's
# What must ask before it is sent: revoking, deleting, turning off, signing out everywhere.
DESTRUCTIVE = re.compile(r"revoke|delete|disable|deactivate|sign-?out-everywhere|logout-all|/end/")


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "form":
            self.forms.append(dict(attrs))


class _Buttons(HTMLParser):
    """Each button with the attributes of the form it is in."""

    def __init__(self):
        super().__init__()
        self.form: dict = {}
        self.buttons: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "form":
            self.form = dict(attrs)
        elif tag == "button":
            self.buttons.append({"id": dict(attrs).get("id") or "", "form": self.form})

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = {}


def _buttons(html: str) -> list[dict]:
    parser = _Buttons()
    parser.feed(html)
    return parser.buttons


def _form_of(buttons: list[dict], button_id: str) -> dict:
    return next(b["form"] for b in buttons if b["id"] == button_id)


def _forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _signed_in(user: User, agent: str) -> Client:
    browser = Client(HTTP_USER_AGENT=agent)
    response = browser.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response
    return browser


def test_every_destructive_form_asks_first():
    user = UserFactory(email_verified_at=timezone.now())
    quota_for(user, "free")
    _signed_in(user, "Firefox on a second laptop")  # a device this browser can sign out
    browser = _signed_in(user, "Chromium on this phone")
    with transaction.atomic(), rls.user_context(user):
        tokens.token_issue(user_id=user.pk, name="CI pipeline")
    pages = ["/me/", "/me/tokens/", "/me/security/", "/me/delete/", "/me/plan/", "/me/profile/"]
    checked = []
    for path in pages:
        response = browser.get(path)
        assert response.status_code == 200, path
        for form in _forms(response.text):
            action = form.get("action", "")
            if DESTRUCTIVE.search(action):
                assert form.get("data-confirm"), f"{path}: the form to {action} does not ask"
                checked.append(action)
    assert any("/me/tokens/" in action and "revoke" in action for action in checked)
    assert any("/me/security/sessions/" in action for action in checked)
    assert reverse("accounts:me_delete") in checked

    # Two-factor on: turning it off asks.
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    twofactor.recovery_codes_replace(user=user)
    session = browser.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # this session passed a code
    session.save()
    page = browser.get(reverse("accounts:two_factor_setup"))
    assert page.status_code == 200
    disable = [f for f in _forms(page.text) if "disable" in f.get("action", "")]
    assert disable and all(f.get("data-confirm") for f in disable)


def test_the_plan_downgrades_ask_and_the_upgrades_do_not(client, settings):
    settings.BILLING_CHECKOUT_LINKS = {"team": "https://checkout.example/team"}
    user = User.objects.get(pk=user_register(email="plan@example.com", password="Plan-test-9x!"))
    with transaction.atomic(), rls.service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT change_user_tier(%s, %s)", [user.pk, "pro"])
    client.force_login(user)
    page = client.get(reverse("billing:me_plan"))
    assert page.status_code == 200
    buttons = _buttons(page.text)
    downgrades = [b for b in buttons if b["id"].startswith("downgrade-")]
    assert {b["id"] for b in downgrades} >= {"downgrade-free"}
    for button in downgrades:
        assert button["form"].get("data-confirm"), f"{button['id']} does not ask"
    assert "Cancel your plan?" in _form_of(buttons, "downgrade-free")["data-confirm"]
    for button in buttons:
        if button["id"].startswith("upgrade-"):
            assert not button["form"].get("data-confirm")  # paying is not destructive


def test_staff_pages_ask_before_destructive_forms(client):
    staff = User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    customer = UserFactory(email_verified_at=timezone.now())
    quota_for(customer, "free")
    client.force_login(staff)
    for path in [reverse("dashboard:user", args=[customer.pk]), reverse("dashboard:quotas")]:
        response = client.get(path)
        assert response.status_code == 200, path
        for form in _forms(response.text):
            if DESTRUCTIVE.search(form.get("action", "")):
                assert form.get("data-confirm"), f"{path}: {form.get('action')} does not ask"


def test_the_confirm_script_is_loaded_on_every_page_and_has_no_inline_handler(client):
    response = client.get(reverse("accounts:login"))
    assert re.search(r'<script src="[^"]*js/confirm\.js" defer></script>', response.text)
    script = Path(settings.BASE_DIR, "static", "js", "confirm.js").read_text()
    assert "data-confirm" in script and "window.confirm" in script
    assert "onsubmit" not in response.text and "onclick" not in response.text


# The admin's figures -------------------------------------------------------------------


def test_money_column_writes_money_for_people():
    column = money_column("cost", "Cost")
    row = type("Row", (), {"cost": Decimal("1234.567891")})()
    assert column(row) == "$1,234.57"
    row.cost = Decimal("0.001234")
    assert column(row) == "$0.0012"
    row.cost = None
    assert column(row) == "—"
    assert column.admin_order_field == "cost"
    assert column.short_description == "Cost"
    assert column.__name__ == "cost"


def test_money_column_in_another_currency_names_it():
    column = money_column("amount", "Amount", currency_field="currency")
    row = type("Row", (), {"amount": Decimal("1234.5"), "currency": "EUR"})()
    assert column(row) == "1,234.50 EUR"
    row.currency = "USD"
    assert column(row) == "$1,234.50"


def test_percent_column_writes_a_ratio_as_a_percentage():
    column = percent_column("usage_ratio", "Usage")
    row = type("Row", (), {"usage_ratio": Decimal("0.75236000000000000000")})()
    assert column(row) == "75.2 %"
    row.usage_ratio = None
    assert column(row) == "—"
    assert column.admin_order_field == "usage_ratio"


def test_metric_column_follows_the_alert_metric():
    column = metric_column("value_at_trigger", "Value")
    row = type("Row", (), {"value_at_trigger": Decimal("4.123456"), "metric": "cost"})()
    assert column(row) == "$4.12"
    row.metric, row.value_at_trigger = "tokens", Decimal("4000000.000000")
    assert column(row) == "4,000,000"


def _column(model, name):
    for entry in admin.site._registry[model].list_display:
        if getattr(entry, "__name__", entry) == name:
            return entry
    raise AssertionError(f"no {name} column on {model.__name__}")


@pytest.mark.parametrize(
    ("model", "name", "kind"),
    [
        (UserQuota, "usage_ratio", "percent"),
        (UserQuota, "cost_used", "money"),
        (UserQuota, "cost_limit", "money"),
        (SubscriptionTier, "monthly_price", "money"),
        (SubscriptionTier, "monthly_cost_limit", "money"),
        (PaymentHistory, "amount", "money"),
        (AIUsageDaily, "cost", "money"),
        (VisibleAgentSessionStats, "tool_success_rate", "percent"),
        (VisibleAgentSessionStats, "total_cost", "money"),
        (UsageAlert, "value_at_trigger", "metric"),
    ],
)
def test_the_admin_columns_are_written_for_people(model, name, kind):
    column = _column(model, name)
    assert callable(column), f"{model.__name__}.{name} is shown raw"
    assert column.admin_order_field == name  # still sorts on the database field


def test_the_quota_change_list_shows_the_ratio_as_a_percentage(client):
    staff = User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    user = UserFactory()
    quota = quota_for(user, "free")
    UserQuota.objects.filter(pk=quota.pk).update(
        tokens_used=int(quota.tokens_limit * Decimal("0.75236")), cost_used=Decimal("0.001234")
    )
    client.force_login(staff)
    page = client.get(reverse("admin:billing_userquota_changelist"))
    assert page.status_code == 200
    assert "75.2 %" in page.text
    assert "0.7523600" not in page.text
    assert "$0.0012" in page.text
    # Sorting by the column still works (the ordering the change list started with).
    assert client.get(reverse("admin:billing_userquota_changelist") + "?o=6").status_code == 200
