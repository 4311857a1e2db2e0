"""Account enumeration by timing: do sign-in, sign-up and password reset take as long for an
address that has an account as for one that has not?

Runs the real pages (Django's test client, every middleware, production password hashing,
mail sent in the background as in production) on a database of its own, alternating known
and unknown addresses, and prints the medians.

    .venv/bin/python -m bench.enumeration_timing [--rounds 40]
"""

import argparse
import os
import statistics
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "witchcraft.settings")
os.environ.setdefault("DEBUG", "true")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from witchcraft.platform import deferred  # noqa: E402

KNOWN = "known@example.com"
PASSWORD = "the known account's passphrase"  # noqa: S105 - a throwaway bench account


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run(rounds: int) -> list[tuple[str, float, float]]:
    client = Client()
    settings.RATE_LIMITS = {k: (1_000_000, 60) for k in settings.RATE_LIMITS}
    client.post("/auth/register/", {"email": KNOWN, "password": PASSWORD})
    cases = {
        "sign-in (wrong password / unknown address)": lambda email: client.post(
            "/auth/login/", {"email": email, "password": "not the password at all"}
        ),
        "password reset request": lambda email: client.post(
            "/auth/password-reset/", {"email": email}
        ),
        "sign-up (taken / new address)": lambda email: client.post(
            "/auth/register/", {"email": email, "password": "a fresh long passphrase"}
        ),
    }
    results = []
    for name, call in cases.items():
        known, unknown = [], []
        for _ in range(rounds):
            for email, samples in ((KNOWN, known), (f"{uuid.uuid4().hex}@example.com", unknown)):
                cache.clear()
                started = time.perf_counter()
                response = call(email)
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, (name, response.status_code)
        results.append((name, _median_ms(known), _median_ms(unknown)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    setup_test_environment()
    settings.MAIL_IN_BACKGROUND = True  # as in production
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DATABASES["default"]["TEST"]["NAME"] = "bench_enumeration"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        results = run(args.rounds)
    finally:
        deferred.drain()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(
        f"| page ({args.rounds} rounds each) | known address, median ms |"
        " unknown address, median ms | difference |"
    )
    print("|---|---|---|---|")
    for name, known, unknown in results:
        print(f"| {name} | {known:.1f} | {unknown:.1f} | {known - unknown:+.1f} ms |")


if __name__ == "__main__":
    main()
