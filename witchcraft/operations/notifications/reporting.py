"""Django's error reports (the DEBUG page, the mails to ADMINS) show the settings and the
request's environment, hiding only names that look secret (KEY, TOKEN, SECRET...). The staff
webhook's address is a secret with a plain name: hidden too (DEFAULT_EXCEPTION_REPORTER_FILTER).
"""

import re

from django.views.debug import SafeExceptionReporterFilter


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|WEBHOOK_URL", flags=re.IGNORECASE
    )
