"""PostgreSQL backend that finds (and if needed starts) the embedded server before connecting."""
