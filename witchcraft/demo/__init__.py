"""Demo data: a realistic, reproducible Witchcraft population (``manage.py seed_demo``).

Modules, in the order the data is made:

- ``plan``      options, the catalog and plans the demo uses, the time window, the people
- ``users``     accounts, profiles, plans over time, payments, quotas, API tokens, audit trail
- ``activity``  the daily rhythm; each person's requests and sessions played in time order
- ``usage``     usage rows and their keys (model mix, tokens, latency, errors, cost)
- ``agents``    agent sessions, messages, tool calls, feedback
- ``phrases``   names and words
- ``bulk``      COPY text encoding, buffered tables, ids from the sequences
- ``rollups``   what triggers and flows would have computed, set-wise from the raw rows
- ``reset``     finding and removing demo accounts
- ``progress``  the progress bar
- ``seeder``    the whole load in one transaction
"""
