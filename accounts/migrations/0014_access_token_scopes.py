"""Scopes start to mean something (accounts.scopes): every token issued before held arbitrary
scope strings that nothing checked, so each could do everything. Existing tokens keep that
behaviour until they expire: they are given the whole vocabulary, and what a token may use is
always its stored scopes within what user tokens may hold on the deployment (so usage.record
only counts where USAGE_SELF_REPORTING is on), which is the client app's default set."""

from django.db import migrations

# The vocabulary as it stands at this migration (migrations never import app code).
ALL_SCOPES = ["usage.read", "usage.record", "agents", "tokens.manage", "account"]


def grant_the_default_scopes(apps, schema_editor):
    AccessToken = apps.get_model("accounts", "AccessToken")
    AccessToken.objects.update(scopes=ALL_SCOPES)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0013_service_credentials")]

    # Backwards: the old scopes are gone, and the full set is as good as any (nothing checked).
    operations = [
        migrations.RunPython(grant_the_default_scopes, reverse_code=migrations.RunPython.noop)
    ]
