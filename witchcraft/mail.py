"""Mails: a text and an HTML part rendered from ``templates/mail/<name>.txt|.html``."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from witchcraft.deferred import after_response


def site_url(path: str) -> str:
    """An absolute link, built from SITE_URL, never from the request's Host header."""
    return settings.SITE_URL + path


def mail_message(*, to: str, subject: str, template: str, context: dict) -> EmailMultiAlternatives:
    """Return the mail ``template`` (text and HTML) rendered with ``context``, addressed to
    ``to``, ready to ``send()``."""
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
    return message


def mail_send(*, to: str, subject: str, template: str, context: dict) -> None:
    """Render ``template`` with ``context`` and send it to ``to`` once the current transaction
    commits (witchcraft.deferred)."""
    after_response(mail_message(to=to, subject=subject, template=template, context=context).send)
