"""Never silent: which posts the user must see because the bot could not read them (a pure decision).

A post is *unread* when nothing in it was handed on to be traded or applied (every reading is noise, or
notify_only: read with doubt) and yet it speaks of a position the bot holds:
- it replies to the post of an open signal, or
- it names the coin of an open signal (a coin the rules read, a ``#BTC`` / ``$BTC`` / ``BTC/USDT`` / ``BTCUSDT``
  notation in any case, or the bare ticker in capitals).
Such a post may be a close, a stop move or a warning the rules did not understand: the user is told, with the
post's link and text, so they can act. Chatter that neither replies to an open signal nor names its coin says
nothing about a position and is left alone.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parsing.rules import find_symbols
from parsing.signals import Action, Kind, ParsedMessage
from trading.linking import OpenSignal

NOTICE_TEXT_CHARS = 700  # the post's text in a notice is cut to this many characters

_QUOTES = ("USDT", "USDC", "USD", "BUSD")


@dataclass(frozen=True)
class Unread:
    """An unread post and the open signals it concerns."""

    signals: tuple[OpenSignal, ...]
    replies: bool  # True: it replies to an open signal's post; False: it names an open signal's coin
    why: str  # what the reader made of it (the warnings of its readings, or "read as noise")

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(signal.symbol for signal in self.signals))


def _base(symbol: str) -> str:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol


def _names_base(text: str, base: str) -> bool:
    tagged = rf"(?<![A-Za-z0-9])(?:[#$]\s?{re.escape(base)}|{re.escape(base)}\s*[/\-]?\s*(?:USDT|USDC|USD|PERP))" \
             r"(?![A-Za-z0-9])"
    if re.search(tagged, text, re.IGNORECASE):
        return True
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(base)}(?![A-Za-z0-9])", text) is not None  # bare, in capitals


def named_symbols(text: str, readings: Iterable[ParsedMessage], open_symbols: Iterable[str]) -> set[str]:
    """Which of ``open_symbols`` the post names (its readings' coins, or the coin written in the text)."""
    folded = unicodedata.normalize("NFKC", text)
    wanted = set(open_symbols)
    named = {reading.symbol for reading in readings if reading.symbol in wanted}
    with contextlib.suppress(Exception):  # the coin finder is the reader's; its failure must not hide the post
        named.update(symbol for symbol in find_symbols(folded)[0] if symbol in wanted)
    named.update(symbol for symbol in wanted if _names_base(folded, _base(symbol)))
    return {symbol for symbol in named if symbol}


def doubt(readings: Sequence[ParsedMessage]) -> str:
    """What the reader made of an unread post, for the notice."""
    warnings = [w for reading in readings if reading.action is Action.NOTIFY_ONLY for w in reading.warnings]
    if warnings:
        return "; ".join(dict.fromkeys(warnings))
    kinds = {reading.kind for reading in readings if reading.action is Action.NOTIFY_ONLY}
    if kinds - {Kind.NOISE}:
        return "read with doubt: " + ", ".join(sorted(kind.value for kind in kinds))
    return "read as noise"


def unread_post(
    *,
    channel: str,
    text: str,
    reply_to: int | None,
    readings: Sequence[ParsedMessage],
    handed_on: bool,
    open_signals: Sequence[OpenSignal],
) -> Unread | None:
    """The unread verdict for one post, or None (read, or about no open signal)."""
    if handed_on or any(reading.action is Action.TRADE for reading in readings):
        return None  # something in it is traded or applied; linking decides the rest
    mine = [signal for signal in open_signals if signal.channel.lower() == channel.lower()]
    if not mine:
        return None
    if reply_to is not None:
        replied = tuple(signal for signal in mine if signal.message_id == reply_to)
        if replied:
            return Unread(replied, True, doubt(readings))
    named = named_symbols(text, readings, {signal.symbol for signal in mine})
    if not named:
        return None
    return Unread(tuple(signal for signal in mine if signal.symbol in named), False, doubt(readings))


def cut(text: str, limit: int = NOTICE_TEXT_CHARS) -> str:
    """The post's text for a notice: at most ``limit`` characters, cut visibly."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def post_link(channel: str, message_id: int) -> str:
    return f"https://t.me/{channel}/{message_id}"


def notice_text(unread: Unread, *, channel: str, message_id: int, text: str) -> str:
    """The UNREAD notice: the post's link, which open signal it concerns, why it was not acted on, its text."""
    symbols = ", ".join(unread.symbols)
    ids = ", ".join(str(signal.signal_id) for signal in unread.signals)
    verb = "replies to" if unread.replies else "names the coin of"
    return (f"post {message_id} {post_link(channel, message_id)} {verb} open signal {ids} ({symbols}) "
            f"but was not acted on: {unread.why}. Check it yourself:\n{cut(text)}")
