"""``manage.py worker``: the job worker (witchcraft/tasks.py), kept running through database
restarts (witchcraft/operations/worker.py). ``--respawn`` also starts a new one when it dies."""

import asyncio

from django.core.management.base import BaseCommand, CommandError

from witchcraft.operations import worker


class Command(BaseCommand):
    help = (
        "Run the job worker (scheduled maintenance, mails, upkeep). It waits for the database "
        "with backoff when it goes away and resumes when it is back; stop it with Ctrl-C or "
        "SIGTERM (the jobs in hand finish first)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--respawn",
            action="store_true",
            help="run the worker as a child process and start a new one whenever it dies",
        )
        parser.add_argument(
            "--max-backoff",
            type=float,
            default=worker.MAX_BACKOFF_SECONDS,
            help="longest wait between tries while the database is away, in seconds "
            f"(default {worker.MAX_BACKOFF_SECONDS:.0f})",
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            help="a queue to work on (repeat for several; default: every queue)",
        )

    def handle(self, *args, respawn, max_backoff, queues, **options):
        if not 0 < max_backoff <= 3600:
            raise CommandError("--max-backoff must be more than 0 and at most 3600 seconds.")
        if respawn:
            argv = [f"--max-backoff={max_backoff}"]
            argv += [f"--queue={queue}" for queue in queues or []]
            raise SystemExit(worker.respawn(argv))
        asyncio.run(worker.run(options={"queues": queues}, max_backoff=max_backoff))
