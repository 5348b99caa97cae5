"""The reading boundary: any text in, readings out, never an exception.

Whatever a channel (or a user of ``following parse``) hands over, binary junk, megabytes, right-to-left text,
emoji only, NUL bytes or lone surrogates, the reader gets a clean ``str`` and the caller gets readings:
- ``clean_text`` decodes bytes (invalid UTF-8 replaced), turns lone surrogates into U+FFFD and control
  characters (NUL included) into spaces, keeping line breaks and tabs;
- a text longer than ``MAX_TEXT_CHARS`` is not read at all (no Telegram post is that long, and a cut text could
  read as a different signal): one ``notify_only`` reading says why;
- an exception inside the rules (a bug meeting odd input) is caught here, reported to ``on_error`` (the
  runtime counts it as ``following_parse_errors_total``) and becomes one ``notify_only`` reading naming it;
  a reading the rules' own safety net made of such an error (``parser error: <type>``) is reported the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from parsing.signals import Action, Kind, ParsedMessage

log = logging.getLogger(__name__)

# Telegram posts are at most 4096 characters (captions 1024); 100 KB is the reader's benchmarked worst case.
MAX_TEXT_CHARS = 100_000
PARSER_ERROR = "parser error"
TOO_LONG = "message too long to read"

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Parse = Callable[[str], list[ParsedMessage]]
OnError = Callable[[str], None]


def clean_text(text: object) -> str:
    """A plain ``str`` every reader and writer (journal, JSON, logs) can take, whatever came in."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def refused(reason: str) -> ParsedMessage:
    """The reading of a message the reader could not read: tell the user, trade nothing."""
    return ParsedMessage(kind=Kind.NOISE, action=Action.NOTIFY_ONLY, warnings=(reason,))


def read_safely(text: object, parse: Parse, on_error: OnError | None = None) -> list[ParsedMessage]:
    """``parse(text)`` behind the boundary: always at least one reading, never an exception."""
    cleaned = clean_text(text)
    if len(cleaned) > MAX_TEXT_CHARS:
        return [refused(f"{TOO_LONG} ({len(cleaned)} characters, at most {MAX_TEXT_CHARS})")]
    try:
        readings = list(parse(cleaned))
    except Exception as exc:  # a reader bug on odd input: the message is refused, the caller keeps going
        log.exception("the rules failed on a message of %d characters", len(cleaned))
        _report(on_error, type(exc).__name__)
        return [refused(f"{PARSER_ERROR}: {type(exc).__name__}")]
    # the rules' own safety net gives the same reading: it is an internal error too, and counted as one
    caught = next((w for r in readings for w in r.warnings if w.startswith(f"{PARSER_ERROR}: ")), None)
    if caught is not None:
        _report(on_error, caught.removeprefix(f"{PARSER_ERROR}: "))
    return readings or [ParsedMessage(kind=Kind.NOISE, action=Action.IGNORE)]


def _report(on_error: OnError | None, error: str) -> None:
    if on_error is None:
        return
    try:
        on_error(error)
    except Exception:
        log.exception("parse error observer failed")


def guarded(parse: Parse, on_error: OnError | None = None) -> Parse:
    """``parse`` wrapped in ``read_safely`` (for readers that take a parse function, e.g. the hybrid reader)."""

    def read(text: str) -> list[ParsedMessage]:
        return read_safely(text, parse, on_error)

    return read
