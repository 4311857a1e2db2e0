#!/usr/bin/env python
"""Django's command-line utility for Witchcraft."""

import os
import sys

# Commands that work without a database (or manage it themselves).
NO_DATABASE = {"help", "version", "db", "makemigrations", "collectstatic", "check"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "witchcraft.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        print(f"witchcraft: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command not in NO_DATABASE and not command.startswith("-"):
        from witchcraft.platform.dbcheck import require_database

        require_database()

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
