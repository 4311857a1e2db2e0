"""manage.py sqlmigrations [--check] [--name NAME]: write the migrations for the SQL functions,
triggers, policies and views whose live files changed (witchcraft/platform/sqlobjects/), or,
with --check, fail when the live files and what the migrations install differ."""

from django.core.management.base import BaseCommand, CommandError

from witchcraft.platform import sqlobjects


class Command(BaseCommand):
    help = (
        "Write a migration for each app whose live SQL files (<app>/sql/{functions,triggers,"
        "policies,views}/*.sql) "
        "differ from what its migrations install; --check only reports and fails."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit with an error when a live file or a migration changed",
        )
        parser.add_argument("--name", help="the migration's name after its number")

    def handle(self, *args, check: bool, name: str | None, **options) -> None:
        try:
            live = sqlobjects.live_definitions()
        except sqlobjects.SqlObjectError as error:
            raise CommandError(str(error)) from None
        problems = sqlobjects.drift(live, sqlobjects.migrated_definitions())
        edited = [p for p in problems if "was edited after" in p or "has no live file" in p]
        if check:
            if problems:
                raise CommandError(
                    "The live SQL files and the migrations differ:\n  "
                    + "\n  ".join(problems)
                    + "\nRun manage.py sqlmigrations to write the migrations."
                )
            self.stdout.write(f"{len(live)} live SQL definitions, all installed as they are.")
            return
        if edited:
            raise CommandError("\n".join(edited))
        if name is not None and not name.isidentifier():
            raise CommandError("--name must be a Python identifier (letters, digits, _).")
        written = sqlobjects.write_migrations(fragment=name)
        if not written:
            self.stdout.write("No changes: every live SQL definition is installed as it is.")
        for path in written:
            self.stdout.write(f"Wrote {path}")
