"""Issue, list and revoke the service credentials of the backend that calls the AI providers.

    manage.py service_credentials create --name NAME [--scopes ...] [--days N] --staff EMAIL
    manage.py service_credentials list
    manage.py service_credentials revoke ID --staff EMAIL

A thin wrapper over accounts.service_credentials, run in the service context with the named
staff member as its actor: the database records them as creator (or revoker) and audits it.
``create`` prints the raw credential once; nothing else ever shows it.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts import scopes, service_credentials
from accounts.emails import normalize_email
from accounts.models import ServiceCredential, User
from witchcraft.platform import rls

NO_STAFF = "No active staff member has the address {email}."
NOT_REVOKED = "No active service credential has the id {id}."


class Command(BaseCommand):
    help = "Issue (create), list and revoke service credentials; create prints the secret once."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="issue a credential and print it once")
        create.add_argument("--name", required=True, help="which backend uses it")
        create.add_argument(
            "--scopes",
            nargs="+",
            choices=[s for s in scopes.ALL if s in scopes.SERVICE_SCOPES],
            help="default: all of them",
        )
        create.add_argument(
            "--days",
            type=int,
            help=f"lifetime (default and most: {settings.SERVICE_CREDENTIAL_MAX_TTL_DAYS})",
        )
        create.add_argument("--staff", required=True, metavar="EMAIL", help="who issues it")
        actions.add_parser("list", help="every credential, newest first (never the secret)")
        revoke = actions.add_parser("revoke", help="revoke a credential at once")
        revoke.add_argument("id", type=int)
        revoke.add_argument("--staff", required=True, metavar="EMAIL", help="who revokes it")

    def handle(self, *args, action, **options):
        if action == "list":
            return self._list()
        with transaction.atomic():
            staff = self._staff(options["staff"])
            with rls.service_context(actor=staff):
                try:
                    if action == "create":
                        return self._create(options)
                    return self._revoke(options["id"])
                except service_credentials.ServiceCredentialError as refused:
                    raise CommandError(refused.message) from None

    def _staff(self, email: str) -> User:
        with rls.service_context():
            staff = User.objects.filter(
                email=normalize_email(email), is_staff=True, is_active=True, deleted_at=None
            ).first()
        if staff is None:
            raise CommandError(NO_STAFF.format(email=email))
        return staff

    def _create(self, options) -> None:
        issued = service_credentials.service_credential_issue(
            name=options["name"], scopes=options["scopes"], days=options["days"]
        )
        credential = issued.credential
        self.stdout.write(
            f"Issued service credential {credential.pk} “{credential.name}”"
            f" ({credential.prefix}…), scopes {', '.join(credential.scopes)},"
            f" expires {credential.expires_at:%Y-%m-%d %H:%M} UTC. Shown once, store it now:"
        )
        self.stdout.write(issued.raw)

    def _revoke(self, credential_id: int) -> None:
        if not service_credentials.service_credential_revoke(credential_id=credential_id):
            raise CommandError(NOT_REVOKED.format(id=credential_id))
        self.stdout.write(f"Revoked service credential {credential_id}.")

    def _list(self) -> None:
        now = timezone.now()
        with transaction.atomic(), rls.service_context():
            rows = list(
                ServiceCredential.objects.select_related("created_by").order_by("-created_at")
            )
        if not rows:
            self.stdout.write("No service credentials.")
        for c in rows:
            status = "revoked" if c.revoked_at else ("expired" if c.expires_at <= now else "active")
            used = f"{c.last_used_at:%Y-%m-%d %H:%M}" if c.last_used_at else "never"
            self.stdout.write(
                f"{c.pk}\t{c.name}\t{c.prefix}…\t{','.join(c.scopes)}\t{c.created_by.email}"
                f"\texpires {c.expires_at:%Y-%m-%d %H:%M}\tlast used {used}\t{status}"
            )
