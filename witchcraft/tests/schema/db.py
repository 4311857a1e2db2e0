"""Raw SQL for the schema tests: they read the catalog and write rows around Django (and its
models' validation), as the migration role."""

from django.db import connection


def execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def fetchall(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
