"""Turn ``EMAIL_URL`` into Django 6.1's ``MAILERS`` setting."""

from urllib.parse import parse_qs, unquote, urlsplit

_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "submission": "django.core.mail.backends.smtp.EmailBackend",
    "consolemail": "django.core.mail.backends.console.EmailBackend",
    "filemail": "django.core.mail.backends.filebased.EmailBackend",
    "memorymail": "django.core.mail.backends.locmem.EmailBackend",
    "dummymail": "django.core.mail.backends.dummy.EmailBackend",
}


def mailers_from_url(url: str) -> dict:
    """Return a ``MAILERS`` dict with one ``default`` mailer described by ``url``.

    ``smtp://user:pass@host:587`` (STARTTLS), ``smtps://...:465`` (implicit TLS),
    ``consolemail://``, ``filemail:///path``, ``memorymail://``, ``dummymail://``.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _BACKENDS:
        raise ValueError(f"EMAIL_URL: unknown scheme {scheme!r} (use one of {sorted(_BACKENDS)})")
    options: dict = {}
    if scheme in ("smtp", "smtps", "submission"):
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        options = {
            "host": parts.hostname or "localhost",
            "port": parts.port or {"smtps": 465, "submission": 587}.get(scheme, 25),
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "use_ssl": scheme == "smtps",
            "use_tls": scheme == "submission" or query.get("tls", "") in ("1", "true"),
            "timeout": int(query.get("timeout", 10)),
        }
    elif scheme == "filemail":
        options = {"file_path": parts.path or "/tmp/witchcraft-mail"}  # noqa: S108
    return {"default": {"BACKEND": _BACKENDS[scheme], "OPTIONS": options}}
