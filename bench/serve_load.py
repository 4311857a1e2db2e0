"""Requests per second under `make serve` (gunicorn), for comparing connection settings.

Two steps: ``tokens`` creates API members on the enterprise plan (so the per-token rate limit
does not answer 429) and prints their bearer tokens, one a line; ``run`` sends GETs from
threads, each with its own keep-alive connection, for a number of seconds, rotating the tokens.

    .venv/bin/python -m bench.serve_load tokens --count 50 > /tmp/tokens.txt
    .venv/bin/python -m bench.serve_load run http://127.0.0.1:8000/healthz --seconds 15
    .venv/bin/python -m bench.serve_load run http://127.0.0.1:8000/api/v1/me \\
        --tokens /tmp/tokens.txt --seconds 15

The load generator shares the machine with gunicorn and PostgreSQL: compare runs made the same
way, not with figures from another machine.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import statistics
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


def issue_tokens(count: int) -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "witchcraft.settings")
    import django

    django.setup()
    import uuid

    from django.db import transaction
    from django.utils import timezone

    from accounts import tokens
    from accounts.models import User
    from billing import services as billing
    from witchcraft.platform import rls

    raw = []
    for _ in range(count):
        user = User.objects.create_user(  # as the owner, like manage.py createsuperuser
            email=f"load-{uuid.uuid4().hex[:10]}@example.com",
            password=uuid.uuid4().hex,
            email_verified_at=timezone.now(),
        )
        with transaction.atomic(), rls.service_context():
            billing.subscription_change_tier(user_id=user.pk, tier_slug="enterprise")
        with transaction.atomic(), rls.user_context(user):
            raw.append(tokens.token_issue(user_id=user.pk, name="load test").raw)
    return raw


def _worker(url, headers_cycle, deadline, lock, results):
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    statuses, latencies = Counter(), []
    while time.monotonic() < deadline:
        with lock:
            headers = next(headers_cycle)
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
        except (OSError, http.client.HTTPException):
            statuses["error"] += 1
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
            continue
        latencies.append(time.perf_counter() - started)
    conn.close()
    with lock:
        results["statuses"].update(statuses)
        results["latencies"].extend(latencies)


def run(url: str, *, seconds: float, threads: int, token_file: str | None) -> dict:
    headers = [{"Host": urlsplit(url).hostname, "X-Forwarded-Proto": "https"}]
    if token_file:
        with open(token_file) as handle:
            tokens = [line.strip() for line in handle if line.strip()]
        headers = [{**headers[0], "Authorization": f"Bearer {token}"} for token in tokens]
    lock, results = threading.Lock(), {"statuses": Counter(), "latencies": []}
    headers_cycle = itertools.cycle(headers)
    deadline = time.monotonic() + seconds
    pool = [
        threading.Thread(target=_worker, args=(url, headers_cycle, deadline, lock, results))
        for _ in range(threads)
    ]
    started = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    latencies = sorted(results["latencies"])
    return {
        "requests_per_second": len(latencies) / elapsed,
        "statuses": dict(results["statuses"]),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("tokens", help="create enterprise API members, print tokens")
    issue.add_argument("--count", type=int, default=50)
    load = commands.add_parser("run", help="GET a URL from threads for some seconds")
    load.add_argument("url")
    load.add_argument("--seconds", type=float, default=15)
    load.add_argument("--threads", type=int, default=8)
    load.add_argument("--tokens", help="a file of bearer tokens, one a line")
    args = parser.parse_args()
    if args.command == "tokens":
        print("\n".join(issue_tokens(args.count)))
        return
    result = run(args.url, seconds=args.seconds, threads=args.threads, token_file=args.tokens)
    print(
        f"{result['requests_per_second']:.0f} requests/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, statuses {result['statuses']}"
    )


if __name__ == "__main__":
    main()
