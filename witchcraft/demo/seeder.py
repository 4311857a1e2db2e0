"""``seed_demo``: the whole load, in one transaction (all of it, or nothing).

1. Checks: the role may turn triggers off, the database has no other users (unless forced)
   and no demo users (unless they are to be replaced), the catalog has what the demo uses.
2. The monthly partitions of ``ai_usage_requests`` the window covers are created.
3. With triggers off: the previous demo accounts are removed (``reset``); every person is
   registered by ``create_user_with_profile`` (with the triggers on, as at sign-up:
   :mod:`witchcraft.demo.registration`); then every person's rows are generated (their
   registration rows dated as their history says) and sent with COPY by a second thread (the
   server stores one buffer while Python makes the next), and batch by batch that thread
   computes from the loaded rows what the triggers and flows would have kept up to date
   (:mod:`witchcraft.demo.rollups`).
4. ANALYZE of the loaded tables; in the service context, the session statistics and the
   all-users usage totals are refreshed, the monthly reports are stored
   (:mod:`witchcraft.demo.reports`) and the load is audited (``demo_seeded``, with the row
   counts).
"""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import audit_event
from witchcraft.demo import bulk, registration, reports, reset, rollups
from witchcraft.demo.activity import write_activity
from witchcraft.demo.agents import SessionWriter
from witchcraft.demo.plan import (
    EMAIL_TEMPLATE,
    Catalog,
    DemoOptions,
    Window,
    email_width,
    people,
    utc_offsets,
)
from witchcraft.demo.progress import Progress
from witchcraft.demo.usage import Quota, UsageWriter
from witchcraft.demo.users import AccountWriter
from witchcraft.platform import rls

DEMO_SEEDED = "demo_seeded"
NOT_PRIVILEGED = (
    "seed_demo loads with triggers off (session_replication_role = replica), which needs a "
    "superuser: the database role {role} is not one"
)
OTHER_USERS = (
    "the database has {count} user(s) that are not demo users: refusing to add demo data "
    "(pass --force to add it anyway)"
)
DEMO_PRESENT = "the database already holds {count} demo user(s): pass --reset-demo to replace them"
CATALOG_GAPS = "the catalog lacks {gaps}: run migrate first"
SEQUENCED = (  # users: registration takes their ids
    "user_subscriptions",
    "access_tokens",
    "audit_logs",
    "agent_sessions",
    "agent_messages",
)
USAGE_SEQUENCE = "public.ai_usage_requests_id_seq"
REGISTRATION_ROWS = "registration rows"  # the sending thread's job that dates them
# Roll a batch of users up once their rows pass this many (the sending thread does it while
# the next batch is generated).
BATCH_ROWS = 60_000


class DemoError(RuntimeError):
    """The demo data cannot be loaded; the message is one line for the operator."""


@dataclass
class SeedResult:
    rows: dict[str, int]  # rows written per table
    removed: dict[str, int]  # rows of earlier demo data removed per table
    timings: dict[str, float]  # seconds per phase
    seconds: float
    users: int
    first_email: str
    password: str


def seed_demo(
    options: DemoOptions, *, progress: Progress, force: bool = False, reset_demo: bool = False
) -> SeedResult:
    """Load the demo data set described by ``options``; return what was written.

    Raises DemoError (nothing written) when a check fails; database errors propagate.
    """
    started = time.monotonic()
    window = Window.ending(options.now or timezone.now(), options.days)
    with transaction.atomic():
        cursor = connection.connection.cursor()
        _check(cursor, force=force, reset_demo=reset_demo)
        catalog = Catalog.load(cursor)
        if gaps := catalog.missing():
            raise DemoError(CATALOG_GAPS.format(gaps=", ".join(gaps)))
        _ensure_partitions(cursor, window)
        # Triggers off for the load; memory for the roll-ups' sorts and hashes.
        with bulk.bulk_settings(cursor, session_replication_role="replica", work_mem="256MB"):
            removed = {}
            if reset_demo:
                progress.start("removing old demo")
                try:
                    removed = reset.remove_demo(cursor)
                except reset.ResetError as exc:
                    raise DemoError(str(exc)) from exc
                progress.finish()
            rows = _generate(cursor, options, catalog, window, progress)
        progress.start("analyze")
        cursor.execute("ANALYZE " + ", ".join(f"public.{name}" for name in rollups.ANALYZE))
        progress.finish()
        progress.start("session statistics")
        seconds = time.monotonic() - started
        with rls.service_context():
            with connection.cursor() as django_cursor:
                django_cursor.execute("SELECT public.refresh_agent_session_stats()")
                # Every day's all-users totals again: the load (and a reset) wrote past days.
                django_cursor.execute("SELECT public.refresh_usage_daily_totals(NULL)")
            progress.finish()
            progress.start("monthly reports")
            rows[reports.TABLE] = reports.store_reports(window)
            audit_event(
                DEMO_SEEDED,
                details={
                    "users": options.users,
                    "days": options.days,
                    "seed": options.seed,
                    "rows": rows,
                    "removed": removed,
                    "seconds": round(seconds, 1),
                },
            )
        progress.finish()
    return SeedResult(
        rows=rows,
        removed=removed,
        timings=dict(progress.timings),
        seconds=time.monotonic() - started,
        users=options.users,
        first_email=EMAIL_TEMPLATE.format(number=1, width=email_width(options.users)),
        password=options.password,
    )


def _check(cursor, *, force: bool, reset_demo: bool) -> None:
    cursor.execute(
        "SELECT current_user, has_parameter_privilege('session_replication_role', 'SET')"
    )
    role, allowed = cursor.fetchone()
    if not allowed:
        raise DemoError(NOT_PRIVILEGED.format(role=role))
    others, demo = reset.count_users(cursor)
    if others and not force:
        raise DemoError(OTHER_USERS.format(count=others))
    if demo and not reset_demo:
        raise DemoError(DEMO_PRESENT.format(count=demo))


def _ensure_partitions(cursor, window: Window) -> None:
    """The monthly partitions from the window's first month to 3 months ahead."""
    cursor.execute("SELECT current_setting('lock_timeout')")
    (lock_timeout,) = cursor.fetchone()
    cursor.execute("SELECT public.ensure_usage_partitions(3, %s)", [window.months_back])
    # ensure_usage_partitions sets a 5 s lock_timeout for the rest of the transaction.
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])


def _password_hash(password: str, rng: random.Random) -> str:
    """One hash for every demo account (a salt from the seed: the same data every run)."""
    salt = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(22))
    return make_password(password, salt=salt)


def _generate(
    cursor, options: DemoOptions, catalog: Catalog, window: Window, progress: Progress
) -> dict[str, int]:
    """Every person's rows, sent with COPY, and their roll-ups, batch by batch (the sending
    thread rolls a batch up while the next one is generated); return the rows per table."""
    rng = random.Random(options.seed)  # noqa: S311 - demo data, not secrets
    persons = people(options, catalog, window, rng)
    zones: dict[str, dict[int, int]] = {}
    for person in persons:
        person.offsets = zones.setdefault(person.zone, utc_offsets(person.zone, window))
    ids = {name: bulk.Ids.of_column(cursor, name) for name in SEQUENCED}
    usage_ids = bulk.Ids(cursor, USAGE_SEQUENCE)
    password_hash = _password_hash(options.password, rng)
    progress.start("registration", total=len(persons), unit="users")
    registration.register(cursor, persons, password_hash)
    progress.advance(len(persons))
    progress.finish()
    now = bulk.moment(window.now)
    rolled: dict[str, int] = {}
    step_seconds: dict[str, float] = {}
    progress.start("generating + COPY", total=len(persons), unit="users")
    with bulk.Loader(cursor) as loader:
        registrations = registration.Registrations(cursor, loader)
        accounts = AccountWriter(
            loader, ids, window, rng, catalog, password_hash, len(persons), registrations
        )
        usage = UsageWriter(loader, usage_ids, window, rng, catalog.models)
        sessions = SessionWriter(
            loader, ids["agent_sessions"], ids["agent_messages"], usage, window, rng
        )
        batch: list[int] = []
        batch_start = written = 0

        def roll_up_batch() -> None:
            loader.flush_all()
            loader.submit(REGISTRATION_ROWS, registrations.apply)
            user_ids = list(batch)
            loader.submit(
                "roll-ups",
                lambda cur: rollups.roll_up(
                    cur, user_ids, now, rolled, step_seconds, time.monotonic
                ),
            )
            batch.clear()

        for person in persons:
            accounts.write(person)
            write_activity(person, Quota(window, person.tier), window, rng, usage, sessions)
            batch.append(person.id)
            total = loader.rows
            progress.advance(1, rows=total - written)
            written = total
            if total - batch_start >= BATCH_ROWS:
                roll_up_batch()
                batch_start = total
            else:
                loader.maybe_flush()
        if batch:
            roll_up_batch()
    progress.finish()
    server = {"COPY": sum(t for kind, t in loader.seconds.items() if kind.startswith("COPY"))}
    server["registration rows dated"] = loader.seconds.get(REGISTRATION_ROWS, 0.0)
    server |= step_seconds
    progress.note(
        "  the server meanwhile: " + ", ".join(f"{name} {t:.1f} s" for name, t in server.items())
    )
    progress.timings |= {f"server: {name}": t for name, t in server.items()}
    return loader.counts() | rolled
