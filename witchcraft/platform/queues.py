"""The worker's queues and the retry of a mail job, shared by every app's ``tasks.py``."""

from procrastinate import RetryStrategy

MAINTENANCE_QUEUE, MAIL_QUEUE, UPKEEP_QUEUE = "maintenance", "mail", "upkeep"

# A mail that fails (the SMTP server is down) is retried 5, 25, 125, 625 and 3125 s later:
# about an hour in all. Then the job stays failed; alert mails are still swept every 10 min.
MAIL_RETRY = RetryStrategy(max_attempts=5, exponential_wait=5)
