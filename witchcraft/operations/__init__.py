"""The roof: operations. What runs the system rather than serves a domain: the scheduled
maintenance and its record, the worker and its queue upkeep, health, metrics, monitoring and
backups. It may import every domain app and the ground floor; nothing below imports it."""
