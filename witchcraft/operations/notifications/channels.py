"""The two ways staff hear about trouble: mail (STAFF_NOTIFY_EMAILS, through the project's mail
sender) and a Slack-compatible incoming webhook (STAFF_NOTIFY_WEBHOOK_URL).

The webhook's address is a secret (whoever has it can post to the channel): it is read from the
settings when a message is sent, never stored in a job's arguments or a table, and every error
text that leaves this module has it replaced by its host (:func:`mask`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

from witchcraft.platform.mail import mail_message

MAIL, WEBHOOK = "mail", "webhook"
CHANNELS = (MAIL, WEBHOOK)
ERROR_LENGTH = 300


class DeliveryFailed(Exception):
    """A delivery that may work later (the receiver answered 5xx or 429, timed out, refused
    the connection; the mail server failed): the job is retried. Its text never holds the
    webhook's address."""


class DeliveryRefused(Exception):
    """A delivery that will not work by trying again (the receiver answered 4xx: a revoked
    webhook, a malformed address; the channel is no longer configured)."""


def mail_addresses() -> list[str]:
    return list(settings.STAFF_NOTIFY_EMAILS)


def webhook_url() -> str:
    return settings.STAFF_NOTIFY_WEBHOOK_URL


def configured_channels() -> list[str]:
    """The channels set up now, in CHANNELS order."""
    return [
        channel
        for channel, on in ((MAIL, bool(mail_addresses())), (WEBHOOK, bool(webhook_url())))
        if on
    ]


def webhook_host(url: str | None = None) -> str:
    """The webhook's host (``hooks.slack.com``): all of it that may be shown; '' when unset."""
    url = webhook_url() if url is None else url
    if not url:
        return ""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def mask(text: str) -> str:
    """``text`` with the webhook's address replaced by ``<host>/…`` (and any piece of it that
    may be the secret: its path, query, password, by ``…``), on one line of at most
    ERROR_LENGTH characters."""
    url = webhook_url()
    if url:
        text = text.replace(url, f"{webhook_host(url)}/…")
        try:
            parts = urlsplit(url)
            secrets = [parts.path, parts.query, parts.password or ""]
        except ValueError:
            secrets = []
        for secret in secrets:
            if len(secret) > 1:
                text = text.replace(secret, "/…" if secret.startswith("/") else "…")
    line = " ".join(text.split())
    return line if len(line) <= ERROR_LENGTH else line[: ERROR_LENGTH - 1] + "…"


def _slack_escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(*, title: str, body: str, link: str) -> dict:
    """A Slack-compatible message: ``text`` (what notifications and clients without blocks
    show) and the same as blocks, with a link to the monitoring page."""
    text = f"{title}\n{body}"
    return {
        "text": _slack_escape(text),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(body)[:3000]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{link}|Open /dashboard/monitoring/>"}],
            },
        ],
    }


def webhook_send(*, title: str, body: str, link: str) -> None:
    """POST the message to the webhook. Raises DeliveryFailed (retry) or DeliveryRefused."""
    url = webhook_url()
    if not url:
        raise DeliveryRefused("the webhook is not configured (STAFF_NOTIFY_WEBHOOK_URL)")
    data = json.dumps(webhook_payload(title=title, body=body, link=link)).encode()
    request = urllib.request.Request(  # noqa: S310 - settings allow only http(s) URLs
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    host = webhook_host(url)
    # Every failure is raised anew "from None": the original exception (its text, its chained
    # cause) may carry the address.
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.STAFF_NOTIFY_WEBHOOK_TIMEOUT_SECONDS
        ) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        if status >= 500 or status == 429:
            raise DeliveryFailed(f"the webhook at {host} answered {status}") from None
        raise DeliveryRefused(f"the webhook at {host} refused the message ({status})") from None
    except TimeoutError:
        raise DeliveryFailed(f"the webhook at {host} did not answer in time") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(
            mask(f"the webhook at {host} could not be reached: {type(reason).__name__}")
        ) from None
    except ValueError:
        raise DeliveryRefused(f"the webhook address at {host} is not usable") from None


def mail_send(*, title: str, body: str, link: str, severity: str) -> None:
    """Mail the message to every STAFF_NOTIFY_EMAILS address, in one mail (the project's
    sender and its templates). Raises DeliveryFailed (retry) or DeliveryRefused."""
    addresses = mail_addresses()
    if not addresses:
        raise DeliveryRefused("no staff address is configured (STAFF_NOTIFY_EMAILS)")
    message = mail_message(
        to=addresses[0],
        subject=title,
        template="staff_notification",
        context={"title": title, "lines": body.splitlines(), "link": link, "severity": severity},
    )
    message.to = addresses
    try:
        message.send()
    except Exception as exc:  # the mail server's failure: retried
        raise DeliveryFailed(mask(f"the mail was not sent: {type(exc).__name__}")) from None
