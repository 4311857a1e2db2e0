"""Mails: a text and an HTML part rendered from ``templates/mail/<name>.txt|.html``, sent by the
worker (the ``send_mail`` job, retried) once the caller's transaction commits."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from witchcraft.platform import deferred


def site_url(path: str) -> str:
    """An absolute link, built from SITE_URL, never from the request's Host header."""
    return settings.SITE_URL + path


def addressee(user) -> dict[str, str]:
    """What a mail template may say about ``user`` (``{{ user.full_name }}``), as plain data
    the job queue can store."""
    return {"email": user.email, "full_name": user.full_name}


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


def mail_deliver(*, to: str, subject: str, template: str, context: dict) -> None:
    """Render and send the mail now (the ``send_mail`` job; an SMTP failure raises, and the
    job is retried)."""
    mail_message(to=to, subject=subject, template=template, context=context).send()


def mail_send(*, to: str, subject: str, template: str, context: dict) -> None:
    """Send the mail ``template`` rendered with ``context`` to ``to`` once the current
    transaction commits, through the job queue (witchcraft.platform.deferred).

    ``context`` is stored in the queue until the mail is out: JSON values only (``addressee``
    for a user) and never a secret; a mail that carries a token is made by its own job.
    Raises TypeError at once for a context the queue cannot store.
    """
    json.dumps(context)
    deferred.after_commit(
        deferred.SEND_MAIL, to=to, subject=subject, template=template, context=context
    )
