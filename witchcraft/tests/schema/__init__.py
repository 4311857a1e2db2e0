"""The project-level schema suite: what every app's tables, constraints and named indexes
are in the database itself, tested around Django."""
