"""The canonical form of an email address, shared by the user model and the account services
(its own module so that neither imports the other for it)."""


def normalize_email(email: str) -> str:
    """Return the canonical form of an address: trimmed and lower-cased."""
    return (email or "").strip().lower()
