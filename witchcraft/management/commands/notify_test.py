"""Send a test notification to every configured staff channel (mail, webhook), now."""

from django.core.management.base import BaseCommand, CommandError

from witchcraft.operations.notifications import (
    CHANNELS,
    configured_channels,
    notification_test,
    webhook_host,
)
from witchcraft.operations.notifications.delivery import ALREADY_DELIVERED, DELIVERED

NOTHING_CONFIGURED = (
    "No notification channel is configured: set STAFF_NOTIFY_EMAILS and/or "
    "STAFF_NOTIFY_WEBHOOK_URL."
)


class Command(BaseCommand):
    help = (
        "Send a test notification now to each configured staff channel (STAFF_NOTIFY_EMAILS, "
        "STAFF_NOTIFY_WEBHOOK_URL), without the queue, and say for each whether it was "
        "delivered (exit 1 when one was not). The webhook is named by its host only."
    )

    def handle(self, *args, **options):
        if not configured_channels():
            raise CommandError(NOTHING_CONFIGURED)
        results = notification_test()
        failed = False
        for channel in CHANNELS:
            if channel not in results:
                self.stdout.write(f"{channel}: not configured")
                continue
            where = f"webhook at {webhook_host()}" if channel == "webhook" else "mail"
            outcome = results[channel]
            if outcome in (DELIVERED, ALREADY_DELIVERED):
                self.stdout.write(f"{channel}: delivered ({where})")
            else:
                failed = True
                self.stderr.write(f"{channel}: NOT delivered: {outcome}")
        if failed:
            raise CommandError("A test notification was not delivered (see above).")
