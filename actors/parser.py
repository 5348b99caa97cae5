"""Parser: turns each post into readings (rules first) and journals every one of them.

A reading that is not a clear `trade` becomes a notice for the user and nothing else. A post nothing of which is
acted on, but which replies to an open signal or names its coin, is an UNREAD notice with its link and text
(``trading/unread.py``): the user decides what it meant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from actors.base import SupervisedActor
from actors.messages import PostEdited, PostReadByModel, PostSeen, SignalParsed
from actors.ports import Notices, Recipient
from actors.risk_gate import open_signals
from ops.metrics import Metrics
from parsing.hybrid import HybridReader
from parsing.posts import Post
from parsing.reading import OnError, Parse, read_safely
from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage, reading_context
from runtime.vision import ModelReads
from trading.journal import Journal
from trading.modes import Mode
from trading.risk import needs_default_stop
from trading.unread import notice_text, unread_post

log = logging.getLogger("following.parser")


def read_post(post: Post, parse: Parse = parse_text, on_error: OnError | None = None) -> list[ParsedMessage]:
    """Every reading of a post; odd input or a parser crash becomes a notify_only reading (``parsing/reading.py``)."""
    readings = read_safely(post.text, parse, on_error)
    if post.image_urls and not any(r.action is Action.TRADE for r in readings):
        # The image may carry the signal; until the vision model reads it, the user is told.
        readings = [*readings, ParsedMessage(kind=Kind.NOISE, action=Action.NOTIFY_ONLY,
                                             warnings=("post has an image the rules cannot read",))]
    return readings


class Parser(SupervisedActor):
    def __init__(self, *, name: str, supervisor: Recipient | None, mode: Mode = Mode.NORMAL,
                 journal: Journal, risk_gate: Recipient, notifier: Notices, metrics: Metrics,
                 vision: HybridReader | None = None, use_default_stop_loss: bool = False,
                 parse: Callable[[str], list[ParsedMessage]] = parse_text) -> None:
        super().__init__(name, supervisor, mode=mode)
        self._parse = parse
        # With risk.use_default_stop_loss an entry lacking only its stop goes to the RiskGate for the default stop.
        self._use_default_stop = use_default_stop_loss
        self._journal = journal
        self._risk_gate = risk_gate
        self._notifier = notifier
        self._metrics = metrics
        self._model_reads = ModelReads(vision, self.actor_ref.tell, self.name) if vision is not None else None

    def on_started(self) -> None:
        # Posts recorded by the Listener but never read (a crash in between) are read now.
        for post in self._journal.unread_posts():
            self._read(post, edited=False)

    def handle(self, message: Any) -> Any:
        if isinstance(message, PostSeen):
            if self._journal.signal_for_post(message.post.channel, message.post.message_id, 0) is not None:
                return None  # read already (handed on again after a restart, and read from the journal at start)
            self._read(message.post, edited=False)
        elif isinstance(message, PostEdited):
            self._read(message.post, edited=True)
        elif isinstance(message, PostReadByModel) and self._model_reads is not None:
            self._record(message.post, list(message.readings), edited=message.edited)
            for post, edited in self._model_reads.finished():
                self._read(post, edited=edited)
        return None

    def on_stopped(self) -> None:
        if self._model_reads is not None:
            self._model_reads.shutdown()

    def _read(self, post: Post, *, edited: bool) -> None:
        reader = self._reader_for(post)
        # with the vision model on, a post may be read on a worker (or wait for one): see ModelReads; a reply is
        # read there with the same context as here
        if self._model_reads is not None and self._model_reads.take(
            post, edited=edited,
            already_read=lambda: self._journal.signal_for_post(post.channel, post.message_id, 0) is not None,
            parse=None if reader is self._parse else reader,
        ):
            return
        self._record(post, read_post(post, reader, self._parse_error), edited=edited)

    def _reader_for(self, post: Post) -> Callable[[str], list[ParsedMessage]]:
        """The rules read a reply with the signal it replies to in mind (its coin, side and levels); an injected
        reader reads the text alone."""
        if post.reply_to is None or self._parse is not parse_text:
            return self._parse
        replied = self._journal.signal_for_post(post.channel, post.reply_to, 0)
        context = reading_context(replied.parsed) if replied is not None else None
        return self._parse if context is None else partial(parse_text, context=context)

    def _parse_error(self, error: str) -> None:
        self._metrics.parse_error(error)

    def _record(self, post: Post, readings: list[ParsedMessage], *, edited: bool) -> None:
        previous = self._journal.signal_for_post(post.channel, post.message_id, 0) if edited else None
        if previous is not None:
            # An edit of a post already read is news for the user, never a second entry.
            self._journal.record_event(
                "SIGNAL_EDITED", {"signal_id": previous.id, "channel": post.channel, "message_id": post.message_id}
            )
            self._notify(post, readings[0], "post edited after it was read; the edit is not traded")
            return
        handed_on = [parsed.action is Action.TRADE or (self._use_default_stop and needs_default_stop(parsed))
                     for parsed in readings]
        unread = unread_post(channel=post.channel, text=post.text or "", reply_to=post.reply_to, readings=readings,
                             handed_on=any(handed_on), open_signals=open_signals(self._journal))
        decisions = ["parsed" if to_risk_gate else "notify_only" if parsed.action is Action.NOTIFY_ONLY else "ignored"
                     for parsed, to_risk_gate in zip(readings, handed_on, strict=True)]
        # All readings in one transaction: a crash between two of them would leave the post read with the later
        # ones never journaled, decided or told.
        signal_ids = self._journal.record_signals(post.channel, post.message_id, [
            (parsed.to_json(), decision, ";".join(parsed.warnings), parsed.symbol)
            for parsed, decision in zip(readings, decisions, strict=True)])
        for index, (parsed, to_risk_gate, decision, signal_id) in enumerate(
                zip(readings, handed_on, decisions, signal_ids, strict=True)):
            self._metrics.signal(decision)
            if to_risk_gate:
                self._risk_gate.tell(
                    SignalParsed(
                        signal_id=signal_id,
                        channel=post.channel,
                        message_id=post.message_id,
                        reply_to=post.reply_to,
                        parsed=parsed,
                        index=index,
                        posted_at=post.date,
                    )
                )
            elif parsed.action is Action.NOTIFY_ONLY:
                # an unread post is told once, below, with its link and text
                self._notify(post, parsed, "not traded: " + ("; ".join(parsed.warnings) or "incomplete"),
                             send=unread is None)
        if unread is not None:
            self._journal.record_event("UNREAD", {
                "channel": post.channel, "message_id": post.message_id, "reply": unread.replies,
                "signal_ids": [signal.signal_id for signal in unread.signals], "symbols": list(unread.symbols),
                "why": unread.why,
            })
            self._metrics.unread_post()
            self._notifier.notify("UNREAD", notice_text(unread, channel=post.channel, message_id=post.message_id,
                                                        text=post.text or ""))

    def _notify(self, post: Post, parsed: ParsedMessage, why: str, *, send: bool = True) -> None:
        self._metrics.notify_only_signal()
        self._journal.record_event(
            "NOTIFY_ONLY",
            {"channel": post.channel, "message_id": post.message_id, "kind": parsed.kind.value, "why": why},
        )
        if send:
            symbol = f" {parsed.symbol}" if parsed.symbol else ""
            self._notifier.notify("NOTIFY_ONLY", f"post {post.message_id}{symbol}: {why}")
