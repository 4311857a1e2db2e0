"""The benchmark's API clients: ``python -m bench.clients COUNT FILE`` (in a Django process on a
benchmark database) moves the first COUNT verified, active demo users to the enterprise plan (so
the per-token rate limit, 2,000 requests a minute, does not answer 429 under load), empties their
quota and
writes one new bearer token per user to FILE, one a line (mode 0600; the file is under
.witchcraft/, never committed). The tokens are made the way the product makes them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "witchcraft.settings")

import django

django.setup()

from django.db import transaction  # noqa: E402

from accounts import tokens  # noqa: E402
from accounts.models import User  # noqa: E402
from billing import services as billing  # noqa: E402
from billing.models import UserQuota  # noqa: E402
from witchcraft.platform import rls  # noqa: E402


def main() -> None:
    count, path = int(sys.argv[1]), Path(sys.argv[2])
    users = list(
        User.objects.filter(
            email__startswith="demo-", email_verified_at__isnull=False, is_active=True
        ).order_by("id")[:count]
    )
    raw = []
    for user in users:
        with transaction.atomic(), rls.service_context():
            billing.subscription_change_tier(user_id=user.pk, tier_slug="enterprise")
        with transaction.atomic(), rls.user_context(user):
            raw.append(tokens.token_issue(user_id=user.pk, name="benchmark").raw)
    UserQuota.objects.filter(user__in=users).update(tokens_used=0, cost_used=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("\n".join(raw) + "\n")
    print(",".join(str(u.pk) for u in users))


if __name__ == "__main__":
    main()
