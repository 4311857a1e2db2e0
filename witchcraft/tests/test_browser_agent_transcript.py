"""A staff member reads a session's transcript in Chromium, on a desktop and on a phone (390 px
wide, no sideways scrolling of the page): user markup stays text, tool calls sit under their
message, the usage row links to its request, the user's email to the 360° page."""

import os
from pathlib import Path

import pytest
from django.db import transaction

from accounts.models import User
from agents.models import AgentFeedback, AgentMessage, AgentSession, AgentToolCall
from usage import services as usage_services
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, catalog_model

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "the staff member's passphrase"
TOO_WIDE = """() => [...document.querySelectorAll("main *")]
    .filter((e) => !e.closest(".table-scroll") && e.getBoundingClientRect().right > 391)
    .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def _session() -> AgentSession:
    ada = UserFactory(email="ada@example.com", full_name="Ada Example")
    model = catalog_model("gpt-5-mini")
    session = AgentSession.objects.create(user=ada, title="Plan a trip", model=model)
    ask = AgentMessage.objects.create(
        session=session, user=ada, role="user", position=1, content="Where should I go in May?"
    )
    answer = AgentMessage.objects.create(
        session=session,
        user=ada,
        role="assistant",
        position=2,
        content="Lisbon, <script>window.hacked = 1</script>",
        model=model,
        input_tokens=1200,
        output_tokens=345,
        latency_ms=1875,
    )
    AgentToolCall.objects.create(
        session=session,
        message=answer,
        user=ada,
        tool_name="weather_forecast",
        arguments={"city": "Lisbon", "month": "May", "units": "metric" * 12},
        result={"celsius": 24, "summary": "sunny " * 30},
        status="success",
        duration_ms=42,
    )
    AgentFeedback.objects.create(session=session, message=answer, user=ada, rating=5)
    with transaction.atomic(), rls.service_context():
        usage_services.usage_record(
            user_id=ada.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            request_id="req-2026-12-07-a-rather-long-request-identifier",
            latency_ms=1875,
            agent_session_id=session.pk,
            agent_message_id=answer.pk,
        )
    assert ask.pk
    return session


def test_staff_read_a_transcript_on_a_desktop_and_a_phone(page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    session = _session()
    User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    url = f"{live_server.url}/dashboard/agents/{session.pk}/"
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/auth/login/?next=/dashboard/agents/{session.pk}/")
    page.fill("input[name=email]", "staff@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(url)

    answer = page.locator("#transcript > li").nth(1)
    assert "Lisbon, <script>window.hacked = 1</script>" in answer.inner_text()
    assert page.evaluate("() => window.hacked") is None
    assert answer.locator(".tool-call code").inner_text() == "weather_forecast"
    assert '"city": "Lisbon"' in answer.locator(".tool-arguments").inner_text()
    assert answer.locator(".usage-rows a").inner_text().startswith("req-2026-12-07")
    page.screenshot(path=str(shots / "agent-transcript-desktop.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    # Nothing of the page's own content is wider than the phone (a wide table scrolls inside
    # its .table-scroll box, which the shared stylesheet lets scroll).
    assert page.evaluate(TOO_WIDE) == []
    page.screenshot(path=str(shots / "agent-transcript-phone.png"), full_page=True)

    page.click("#session-user")
    page.wait_for_url(f"{live_server.url}/dashboard/users/{session.user_id}/")
    page.go_back()
    page.locator(".usage-rows a").first.click()
    page.wait_for_load_state()
    assert "/admin/usage/aiusagerequest/" in page.url
