"""The accounts jobs of the worker (procrastinate finds each app's ``tasks.py``): the mails
queued after a commit that carry a token, made by the job so the queue never holds one
(witchcraft/platform/deferred.py)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from accounts import recovery
from witchcraft.platform import deferred
from witchcraft.platform.queues import MAIL_QUEUE, MAIL_RETRY


@app.task(name=deferred.MAIL_EMAIL_VERIFICATION, queue=MAIL_QUEUE, retry=MAIL_RETRY)
def mail_email_verification(
    *, user_id: int, ip: str = "", request_id: str = "", actor_id: int | None = None
) -> None:
    recovery.verification_issue(user_id=user_id, ip=ip, request_id=request_id, actor_id=actor_id)


@app.task(name=deferred.MAIL_PASSWORD_RESET, queue=MAIL_QUEUE, retry=MAIL_RETRY)
def mail_password_reset(
    *, user_id: int, ip: str = "", request_id: str = "", actor_id: int | None = None
) -> None:
    recovery.password_reset_issue(user_id=user_id, ip=ip, request_id=request_id, actor_id=actor_id)
