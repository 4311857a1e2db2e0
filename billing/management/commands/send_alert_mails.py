"""Mail the quota alerts whose mail has not gone out (a failed SMTP server, a restart)."""

from django.core.management.base import BaseCommand, CommandError

from billing import alerts


class Command(BaseCommand):
    help = (
        "Mail every unresolved quota alert not mailed yet (one mail per user) and mark it "
        "notified. Alerts are normally mailed right after they fire; this catches up the ones "
        "whose mail failed. Prints how many alerts were mailed."
    )

    def handle(self, *args, **options):
        try:
            mailed = alerts.alerts_notify()
        except Exception as exc:  # the mail server's failure: say it in one line, exit 1
            raise CommandError(f"send_alert_mails: {type(exc).__name__}: {exc}") from exc
        self.stdout.write(f"alerts_mailed: {mailed}")
