"""``manage.py seed_demo``: load a realistic, reproducible demo data set (see witchcraft.demo)."""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from witchcraft.demo.plan import DEFAULT_PASSWORD, DEFAULT_SEED, MAX_DAYS, MAX_USERS, DemoOptions
from witchcraft.demo.progress import Progress
from witchcraft.demo.seeder import DemoError, seed_demo
from witchcraft.platform.maintenance_command import database_error_message


def _bounded(name: str, upper: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= upper:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number from 1 to {upper:,}")
        return value

    return parse


class Command(BaseCommand):
    help = (
        "Load demo data: N users across the plans (most free, some pro, fewer team, a couple "
        "enterprise) with D days of AI usage ending today, agent sessions with messages, tool "
        "calls and feedback, payments, quota alerts and audit events; the roll-ups, session "
        "totals and quotas are computed from the raw rows, and the monthly report of every "
        "month of the window that has ended is stored (as monthly_report stores it). "
        "Reproducible with --seed. Written "
        "with COPY in one transaction. Refuses a database with other users unless --force, "
        "and earlier demo data unless --reset-demo. Every demo account signs in with "
        "demo-NNNNN@example.com and the demo password (printed at the end). Needs a superuser "
        "database role (the load runs with triggers off)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--users",
            type=_bounded("users", MAX_USERS),
            default=1000,
            help="number of demo users (default 1000)",
        )
        parser.add_argument(
            "--days",
            type=_bounded("days", MAX_DAYS),
            default=30,
            help="days of usage, ending today (default 30)",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help="random seed: the same seed and sizes give the same data for the same end of "
            f"the window, which is the current time (default {DEFAULT_SEED})",
        )
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"the password of every demo account (default {DEFAULT_PASSWORD!r}; "
            "demo accounts are public, never use a real secret)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="add demo data even though the database has users that are not demo users",
        )
        parser.add_argument(
            "--reset-demo",
            action="store_true",
            help="first remove earlier demo users and everything they own (nothing else)",
        )

    def handle(self, *args, **options) -> None:
        if not options["password"]:
            raise CommandError("seed_demo: --password cannot be empty")
        progress = Progress(
            lambda text: self.stderr.write(text, style_func=lambda x: x, ending=""),
            live=self.stderr.isatty(),
        )
        demo = DemoOptions(
            users=options["users"],
            days=options["days"],
            seed=options["seed"],
            password=options["password"],
        )
        try:
            result = seed_demo(
                demo, progress=progress, force=options["force"], reset_demo=options["reset_demo"]
            )
        except DemoError as exc:
            raise CommandError(f"seed_demo: {exc}") from exc
        except DatabaseError as exc:
            raise CommandError(f"seed_demo: {database_error_message(exc)}") from exc
        self._summary(result)

    def _summary(self, result) -> None:
        write = self.stdout.write
        if result.removed:
            write(f"removed earlier demo data: {sum(result.removed.values()):,} rows")
        width = max(len(name) for name in result.rows)
        for name, count in sorted(result.rows.items(), key=lambda item: -item[1]):
            write(f"  {name:<{width}}  {count:>10,}")
        write(f"  {'total':<{width}}  {sum(result.rows.values()):>10,}")
        write(f"loaded in {result.seconds:.1f} s")
        who = (
            f"the demo user signs in as {result.first_email}"
            if result.users == 1
            else f"{result.users:,} demo users sign in as {result.first_email} (and the "
            "following numbers)"
        )
        write(f"{who} with the demo password: {result.password}")
