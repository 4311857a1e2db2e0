"""Server time of the dashboard and self-service pages: ``python -m bench.pages OUT [--loads N]
[--rounds R]`` in a Django process on a benchmark database (DEBUG=false).

Each page is requested through the whole Django stack (every middleware, the row-level-security
context, the template) by Django's test client, in process: the time is the server's, without
a network or a browser. Two loads warm each page up; then ``--loads`` timed loads, in
``--rounds`` rounds over every page; the median of the rounds' p95 is written to OUT as JSON.
The staff pages are loaded by a staff member made for the benchmark (signed in with a second
factor), the self-service pages by the demo user at the 90th percentile of this month's
requests.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "witchcraft.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from accounts.models import User  # noqa: E402
from bench.harness import percentile  # noqa: E402
from usage.services import usage_totals_refresh_today  # noqa: E402

STAFF_PAGES = ["/dashboard/", "/dashboard/usage/"]
USER_PAGES = ["/me/", "/me/usage/"]
STAFF_EMAIL = "bench-staff@example.com"


def heavy_user() -> User:
    """The user at the 90th percentile of this month's requests: a heavy user, and one of
    the same kind at every scale (the heaviest of 10,000 users is heavier than the heaviest
    of 1,000, which would measure the user, not the data's growth)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH month AS (SELECT user_id, request_count FROM public.ai_usage_monthly"
            " WHERE (year, month) = (extract(year FROM now() AT TIME ZONE 'UTC'),"
            " extract(month FROM now() AT TIME ZONE 'UTC')))"
            " SELECT user_id FROM month ORDER BY request_count DESC, user_id"
            " OFFSET (SELECT count(*) / 10 FROM month) LIMIT 1"
        )
        (user_id,) = cursor.fetchone()
    return User.objects.get(pk=user_id)


def staff_client() -> Client:
    """A staff member's browser, signed in and past the second factor (an authenticator app),
    as production requires for the dashboard (STAFF_2FA_REQUIRED)."""
    user = User.objects.filter(email=STAFF_EMAIL).first()
    if user is None:
        user = User.objects.create_user(email=STAFF_EMAIL, password=None, is_staff=True)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def time_page(client: Client, path: str, loads: int) -> list[float]:
    """Two warm-up loads, then ``loads`` timed ones (ms)."""
    times = []
    for attempt in range(loads + 2):
        started = time.perf_counter()
        response = client.get(path, secure=True)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"bench.pages: {path} answered {response.status_code}")
        if attempt >= 2:
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    # Today's all-users totals as the job worker leaves them every minute (it does not run here).
    usage_totals_refresh_today()
    clients = dict.fromkeys(STAFF_PAGES, staff_client())
    user = heavy_user()
    member = Client()
    member.force_login(user)
    clients |= dict.fromkeys(USER_PAGES, member)
    # Rounds of every page in turn: a figure is the median of the rounds' p95 (the machine's
    # passing noise lands in one round, not in one page).
    rounds: dict[str, list[list[float]]] = {path: [] for path in clients}
    for _ in range(options.rounds):
        for path, client in clients.items():
            gc.collect()  # each page starts from the same heap, not the previous page's garbage
            rounds[path].append(time_page(client, path, options.loads))
    results: dict = {
        path: {
            "p95": statistics.median(percentile(times, 95) for times in timed),
            "p95_rounds": [percentile(times, 95) for times in timed],
            "loads": [t for times in timed for t in times],
        }
        for path, timed in rounds.items()
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM public.ai_usage_requests WHERE user_id = %s", [user.pk]
        )
        results["user_usage_rows"] = cursor.fetchone()[0]
    with open(options.out, "w") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
