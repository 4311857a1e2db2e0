"""Mails: a text and an HTML part rendered from ``templates/mail/<name>.txt|.html``."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)
# Mails leave after the transaction commits, off the request thread: a page that mails answers
# as fast as one that does not (no account enumeration by timing).
_sender = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")


def _send(message: EmailMultiAlternatives) -> None:
    try:
        message.send()
    except Exception:  # a mail server failure must not surface in a page
        logger.exception("sending mail %r failed", message.subject)


def site_url(path: str) -> str:
    """An absolute link, built from SITE_URL, never from the request's Host header."""
    return settings.SITE_URL + path


def mail_send(*, to: str, subject: str, template: str, context: dict) -> None:
    """Render ``template`` (text and HTML) with ``context`` and send it to ``to``."""
    context = {"site_url": settings.SITE_URL, **context}
    text = render_to_string(f"mail/{template}.txt", context)
    html = render_to_string(f"mail/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=f"[Witchcraft] {subject}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(html, "text/html")
    if settings.MAIL_IN_BACKGROUND:
        transaction.on_commit(lambda: _sender.submit(_send, message))
    else:
        message.send()
