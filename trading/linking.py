"""Which open signal an update (TP hit, stop move, close, cancel) speaks of: a pure decision.

Order of evidence, strongest first:
1. the post replies to a signal post (a reply to anything but known commentary never links any other way);
2. the text names a signal: a channel signal id (``SIGNAL ID: #2001``, matched against the id the entry post
   gave itself) or a link to the channel's own post (``t.me/<channel>/<id>``);
3. the update names a coin with exactly one open signal on it.
Fail closed: evidence that points nowhere, at several signals, or at a signal on another coin than the update
names leaves the update unlinked (the caller makes it notify_only). A reply or reference that names a signal
never falls back to the weaker symbol rule: the post said which signal it means, and that one is not open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from parsing.rules.refs import is_post_link, linked_post


class LinkedBy(str, Enum):
    REPLY = "reply"
    SIGNAL_REF = "signal_ref"
    SYMBOL = "symbol"


@dataclass(frozen=True)
class OpenSignal:
    """A traded signal whose position is not closed yet."""

    signal_id: int
    channel: str
    message_id: int
    symbol: str
    signal_ref: str | None = None  # the id the entry post gave itself, if any


@dataclass(frozen=True)
class UpdateToLink:
    channel: str
    reply_to: int | None = None
    # The replied-to post is known and was read as no signal (text only: commentary, an update). Any other reply
    # target (an entry, a post from before the first start, never seen, or with a picture) may be the signal meant.
    replied_is_commentary: bool = False
    signal_ref: str | None = None
    symbol: str | None = None


@dataclass(frozen=True)
class UpdateLink:
    signal: OpenSignal | None  # None: unlinked
    by: LinkedBy | None
    reason: str  # how it was linked, or why not

    @property
    def linked(self) -> bool:
        return self.signal is not None


def _unlinked(reason: str) -> UpdateLink:
    return UpdateLink(None, None, reason)


def _pick(candidates: list[OpenSignal], symbol: str | None, by: LinkedBy, what: str) -> UpdateLink:
    if symbol is not None:
        on_symbol = [signal for signal in candidates if signal.symbol == symbol]
        if not on_symbol:
            others = ", ".join(sorted({signal.symbol for signal in candidates}))
            return _unlinked(f"{what} is a {others} signal but the update names {symbol}")
        candidates = on_symbol
    if len(candidates) > 1:
        return _unlinked(f"{what} matches {len(candidates)} open signals")
    return UpdateLink(candidates[0], by, f"{what} (signal {candidates[0].signal_id})")


def link_update(update: UpdateToLink, open_signals: Sequence[OpenSignal]) -> UpdateLink:
    same_channel = [signal for signal in open_signals if signal.channel.lower() == update.channel.lower()]
    if update.reply_to is not None:
        replied = [signal for signal in same_channel if signal.message_id == update.reply_to]
        if replied:
            return _pick(replied, update.symbol, LinkedBy.REPLY, f"reply to post {update.reply_to}")
        if not update.replied_is_commentary:
            return _unlinked(f"replies to post {update.reply_to}, which is no open signal")
        # a reply to commentary says nothing about the signal: weaker evidence decides
    ref = update.signal_ref
    if ref:
        if is_post_link(ref):
            post = linked_post(ref, update.channel)
            if post is None:
                return _unlinked(f"links to {ref}, a post of another chat")
            named = [signal for signal in same_channel if signal.message_id == post]
            if not named:
                return _unlinked(f"links to post {post}, not an open signal")
            return _pick(named, update.symbol, LinkedBy.SIGNAL_REF, f"link to post {post}")
        named = [signal for signal in same_channel if signal.signal_ref == ref]
        if not named:
            return _unlinked(f"names signal #{ref}, not an open signal")
        return _pick(named, update.symbol, LinkedBy.SIGNAL_REF, f"signal #{ref}")
    if update.symbol is None:
        return _unlinked("names no signal and no coin")
    on_symbol = [signal for signal in open_signals if signal.symbol == update.symbol]
    if not on_symbol:
        return _unlinked(f"no open signal on {update.symbol}")
    if len(on_symbol) > 1:
        return _unlinked(f"{len(on_symbol)} open signals on {update.symbol}: ambiguous")
    return UpdateLink(on_symbol[0], LinkedBy.SYMBOL, f"only open signal on {update.symbol} "
                                                     f"(signal {on_symbol[0].signal_id})")


def may_concern_open_signal(update: UpdateToLink, open_signals: Sequence[OpenSignal]) -> bool:
    """Whether a post could act on an open signal: it replies to one, names one (signal id or post link), or
    names the coin of one. Looser than :func:`link_update` on purpose: it decides which posts a catch-up past
    its page bound still hands on (the RiskGate links them, or says why not), so doubt means yes."""
    same_channel = [signal for signal in open_signals if signal.channel.lower() == update.channel.lower()]
    if update.reply_to is not None and any(signal.message_id == update.reply_to for signal in same_channel):
        return True
    ref = update.signal_ref
    if ref:
        if is_post_link(ref):
            post = linked_post(ref, update.channel)
            if any(signal.message_id == post for signal in same_channel):
                return True
        elif any(signal.signal_ref == ref for signal in same_channel):
            return True
    return update.symbol is not None and any(signal.symbol == update.symbol for signal in open_signals)
