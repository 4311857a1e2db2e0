"""The one error of backups and restores: its message is the one line an operator sees."""


class BackupError(Exception):
    """A backup or restore could not be made; ``str()`` is one line saying why."""
