"""The one secret scrubber: logs, notices, journal entries and error texts all pass through it.

Stdlib only (like ``exchange.backoff``) so every package may use it. Secrets are registered once where they are
read (the config's secrets at start, a client's own key when it is built); ``scrub`` replaces each of them, and
the forms they take in URLs and JSON, by ``***``. ``scrub_cut`` redacts *before* it cuts a text to a length, so
a secret crossing the cut never leaves a piece of itself behind.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

MASK = "***"
_MIN_LENGTH = 4  # shorter values would mask ordinary words; no real secret is this short


def _forms(secret: str) -> set[str]:
    """The texts a secret may appear as: itself, URL-quoted, JSON-escaped, and for a URL its path and query."""
    forms = {secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]}
    if "://" in secret:
        parts = urlsplit(secret)
        forms.update(p for p in (parts.path, parts.query, parts.netloc + parts.path) if p and p != "/")
    return {f for f in forms if len(f) >= _MIN_LENGTH}


class Redactor:
    """A set of secret texts and the replacement of every one of them (thread-safe)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            before = len(self._forms)
            for secret in secrets:
                if secret and len(secret) >= _MIN_LENGTH:
                    self._forms.update(_forms(secret))
            if len(self._forms) != before:
                # Longest first: a URL is replaced whole before its path is.
                ordered = sorted(self._forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(f) for f in ordered))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None and text else text

    def scrub_cut(self, text: str, limit: int) -> str:
        """Redacted first, then cut to ``limit`` characters."""
        return self.scrub(text)[:limit]

    def scrub_data(self, value: Any) -> Any:
        """Every string inside a JSON-like value (dict keys and values, lists) scrubbed; the rest as it is."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_data(v) for v in value]
        return value


# The process's scrubber: every secret the process knows is registered here.
SECRETS = Redactor()


def register_secret(*secrets: str | None) -> None:
    SECRETS.add(*secrets)


def scrub(text: str) -> str:
    return SECRETS.scrub(text)


def scrub_cut(text: str, limit: int) -> str:
    return SECRETS.scrub_cut(text, limit)


class RedactingFilter(logging.Filter):
    """A log filter (on a handler or a logger): the message, its arguments and any traceback are scrubbed
    before a handler writes them."""

    def __init__(self, redactor: Redactor = SECRETS) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself; nothing to scrub yet
            return True
        scrubbed = self._redactor.scrub(message)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.scrub(record.stack_info)
        return True
