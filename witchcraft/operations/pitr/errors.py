class PitrError(Exception):
    """Continuous archiving, a base backup or a point-in-time restore failed; the message says
    why in one line, fit for an operator and for ``maintenance_runs.error``."""
