"""Strip secrets (the CoinGecko API key) from any text before it is logged, shown or exported."""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Keys are registered once by whoever reads them (a source, the CLI); every later redact() call
# strips them, so text built far from the key (an exception string, a URL) is covered too.
_secrets: set[str] = set()
_lock = threading.Lock()

# Shorter strings would mask innocent words; real keys are 20+ characters.
_MIN_SECRET_LEN = 6


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that every later ``redact`` call masks it."""
    if secret and len(secret) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(secret)


def redact(text: object, *extra: str | None) -> str:
    """``text`` as a string, every registered secret (and ``extra`` ones) replaced by ``***``."""
    out = str(text)
    with _lock:
        secrets = set(_secrets)
    secrets.update(s for s in extra if s and len(s) >= _MIN_SECRET_LEN)
    # Longest first, so a key that contains another registered key is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def safe_url(url: str) -> str:
    """``url`` with the password of a ``user:password@`` part replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return redact(url)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return redact(urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}")))


def register_url_secrets(url: str | None) -> None:
    """Mask the password of ``url`` everywhere from now on (an exception text may quote the URL);
    a URL itself is shown through ``safe_url``, which hides a password of any length."""
    if not url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register_secret(password)
        register_secret(url.split("@", 1)[0].rsplit(":", 1)[-1])  # as typed, before unquoting


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the formatted message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        # A bad format string, or an argument whose __str__ raises anything at all, must not hide
        # the record (logging's own handlers catch every Exception at this point too).
        except Exception:  # noqa: BLE001
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


__all__ = [
    "MASK",
    "RedactingFilter",
    "redact",
    "register_secret",
    "register_url_secrets",
    "safe_url",
]
