"""The Parser reads a reply with the signal it replies to in mind: its coin, side and targets."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.messages import Heartbeat, PostSeen, SignalParsed
from actors.parser import Parser
from ops.metrics import Metrics
from parsing.posts import Post
from parsing.rules import parse_text
from parsing.signals import Action, ReadingContext, Side, UpdateType, reading_context
from trading.journal import Journal

CHANNEL = "chan"
SIGNAL_POST = 10
SIGNAL = "#ARB LONG\nEntry 0.8000\nSL 0.7600\nTP1 0.8400\nTP2 0.8800"


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def tell(self, message: Any) -> None:
        self.items.append(message)

    def notify(self, kind: str, text: str) -> None:
        self.items.append((kind, text))

    def parsed(self) -> list[SignalParsed]:
        return [item for item in self.items if isinstance(item, SignalParsed)]


@pytest.fixture
def system() -> Iterator[tuple[Any, Journal, Inbox]]:
    with Journal(":memory:") as journal:
        (entry,) = parse_text(SIGNAL)
        journal.record_signal(CHANNEL, SIGNAL_POST, entry.to_json(), "parsed", "", symbol=entry.symbol)
        risk_gate = Inbox()
        parser = Parser.start(name="parser", supervisor=None, journal=journal, risk_gate=risk_gate,
                              notifier=Inbox(), metrics=Metrics())
        yield parser, journal, risk_gate
        parser.stop()


def _read(system: tuple[Any, Journal, Inbox], message_id: int, text: str, reply_to: int | None) -> list[Any]:
    parser, journal, risk_gate = system
    post = Post(CHANNEL, message_id, text, reply_to=reply_to)
    journal.record_post(post)
    parser.tell(PostSeen(post))
    assert parser.ask(Heartbeat(), timeout=10) is True
    return [item.parsed for item in risk_gate.parsed() if item.message_id == message_id]


def test_a_reply_moving_the_stop_to_a_target_gets_the_signal_s_target_price(system: Any) -> None:
    [update] = _read(system, 11, "dời SL lên TP1", reply_to=SIGNAL_POST)
    assert (update.update_type, update.update_price) == (UpdateType.SET_STOP, Decimal("0.8400"))
    # the same words without the reply: the price is unknown, nothing goes to the risk gate
    assert _read(system, 12, "dời SL lên TP1", reply_to=None) == []


def test_a_reply_without_a_coin_is_an_update_of_its_signal(system: Any) -> None:
    [update] = _read(system, 13, "close half", reply_to=SIGNAL_POST)
    assert (update.update_type, update.update_percent) == (UpdateType.CLOSE_PARTIAL, Decimal(50))
    [close] = _read(system, 14, "Close long now", reply_to=SIGNAL_POST)
    assert close.update_type is UpdateType.CLOSE_ALL


def test_a_reply_naming_the_other_side_is_not_applied(system: Any) -> None:
    assert _read(system, 15, "Close short now", reply_to=SIGNAL_POST) == []


def test_context_from_a_journaled_reading() -> None:
    (entry,) = parse_text(SIGNAL)
    context = reading_context(entry.to_json())
    assert context == ReadingContext(symbol="ARBUSDT", side=Side.LONG, entries=(Decimal("0.8000"),),
                                     stop_loss=Decimal("0.7600"), take_profits=(Decimal("0.8400"), Decimal("0.8800")))
    assert reading_context({"kind": "update"}) is None
    odd = reading_context({"kind": "entry", "side": "up", "entries": ["x", "-1", "NaN"], "stop_loss": "oops"})
    assert odd == ReadingContext()
    assert entry.action is Action.TRADE
