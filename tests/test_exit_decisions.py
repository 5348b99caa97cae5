"""The RiskGate's side of exits: an update is linked (also to an entry still being decided or placed), journaled
as an exit intent before the OrderManager hears of it, and an update left undecided by a restart is decided
when the bot comes back (never refused as interrupted). Plus the codec of the typed intent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.messages import ExecuteExit, SignalParsed
from actors.risk_gate import RiskGate, RiskGateSettings
from ops.metrics import Metrics
from ops.notify import Notice, Notifier
from parsing.posts import Post
from parsing.signals import Action, Kind, ParsedMessage, Side, UpdateType
from runtime.config import NotifyConfig
from tests.waiting import wait_until
from trading.exits import exit_kind
from trading.intents import EXIT_KINDS, ExitIntent, IntentCodecError, decode, decode_exit, encode
from trading.journal import IntentState, Journal
from trading.risk import RiskLimits

CHANNEL = "exits_chan"
D = Decimal


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def tell(self, message: Any) -> None:
        self.messages.append(message)


class Gate:
    def __init__(self, tmp_path: Path) -> None:
        self.journal = Journal(str(tmp_path / "journal.sqlite"))
        self.orders = Inbox()
        self.notices: list[Notice] = []
        self.notifier = Notifier(NotifyConfig())
        self.notifier.listeners.append(self.notices.append)
        self.ref: Any = None

    def start(self) -> None:
        self.ref = RiskGate.start(name="risk_gate", supervisor=None, journal=self.journal, client=None,
                                  order_manager=self.orders, price_feed=Inbox(), notifier=self.notifier,
                                  metrics=Metrics(), limits=RiskLimits(),
                                  settings=RiskGateSettings(pos_mode="one_way_mode"))

    def stop(self) -> None:
        if self.ref is not None and self.ref.is_alive():
            self.ref.stop(timeout=10)

    def post(self, message_id: int, text: str, parsed: ParsedMessage, decision: str, *,
             reply_to: int | None = None) -> int:
        self.journal.record_post(Post(CHANNEL, message_id, text, reply_to=reply_to))
        return self.journal.record_signal(CHANNEL, message_id, parsed.to_json(), decision, "", symbol=parsed.symbol)


@pytest.fixture()
def gate(tmp_path: Path) -> Iterator[Gate]:
    g = Gate(tmp_path)
    try:
        yield g
    finally:
        g.stop()
        g.journal.close()


ENTRY = ParsedMessage(kind=Kind.ENTRY, action=Action.TRADE, symbol="BTCUSDT", side=Side.SHORT,
                      entries=(D("60000"),), stop_loss=D("61000"), take_profits=(D("59000"),))
HALF = ParsedMessage(kind=Kind.UPDATE, action=Action.TRADE, symbol="BTCUSDT", update_type=UpdateType.CLOSE_PARTIAL,
                     update_percent=D("50"))


@pytest.mark.parametrize("entry_decision", ["parsed", "approved"])
def test_update_read_right_after_its_entry_is_journaled_as_an_exit_of_it(gate: Gate, entry_decision: str) -> None:
    gate.start()
    entry_id = gate.post(10, "short BTC", ENTRY, entry_decision)  # still deciding (busy retry) or being placed
    update_id = gate.post(11, "Close 50%", HALF, "parsed", reply_to=10)
    gate.ref.tell(SignalParsed(update_id, CHANNEL, 11, 10, HALF))
    wait_until(lambda: gate.orders.messages, what="the exit handed on")
    (message,) = gate.orders.messages
    assert isinstance(message, ExecuteExit)
    assert message.intent.target_signal_id == entry_id
    assert (message.intent.kind, message.intent.percent, message.intent.hold_side) == ("close_partial", D("50"),
                                                                                         "short")
    (row,) = gate.journal.exits()
    assert row.intent == message.intent and row.state is IntentState.PENDING
    assert gate.journal.signal(update_id).decision == "exit_pending"  # "applied" only once done
    assert not gate.notices


def test_update_left_undecided_by_a_restart_is_decided_when_the_bot_comes_back(gate: Gate) -> None:
    gate.post(10, "short BTC", ENTRY, "traded")
    close = ParsedMessage(kind=Kind.CLOSE, action=Action.TRADE, symbol="BTCUSDT", update_type=UpdateType.CLOSE_ALL)
    update_id = gate.post(11, "Close all", close, "parsed", reply_to=10)
    entry_id = gate.post(12, "short ETH", ParsedMessage(kind=Kind.ENTRY, action=Action.TRADE, symbol="ETHUSDT",
                                                        side=Side.LONG), "parsed")
    gate.start()
    wait_until(lambda: gate.orders.messages, what="the exit handed on")
    (message,) = gate.orders.messages
    assert message.intent.kind == "close_all" and message.intent.update_signal_id == update_id
    assert gate.journal.signal(update_id).decision == "exit_pending"
    # An entry still refuses as interrupted: decided in the same start-up pass, after the exit was handed on.
    wait_until(lambda: gate.journal.signal(entry_id).decision == "refused", what="the interrupted entry refused")
    assert not [n for n in gate.notices if n.text.startswith("post 11")]


def test_update_replying_to_a_post_still_being_read_waits_for_its_reading(gate: Gate) -> None:
    gate.start()
    gate.journal.record_post(Post(CHANNEL, 10, "", image_urls=("http://x/1.jpg",)))  # on the vision model
    update_id = gate.post(11, "Close 50%", HALF, "parsed", reply_to=10)
    gate.ref.tell(SignalParsed(update_id, CHANNEL, 11, 10, HALF))
    wait_until(lambda: gate.journal.signal(update_id).decision == "parsed", what="the update seen")
    gate.journal.record_signal(CHANNEL, 10, ENTRY.to_json(), "approved", "", symbol="BTCUSDT")  # read at last
    wait_until(lambda: gate.orders.messages, timeout=10, what="the exit once its signal was read")
    assert gate.journal.signal(update_id).decision == "exit_pending"


def test_exit_kinds() -> None:
    def kind(update_type: UpdateType, **fields: Any) -> str | None:
        return exit_kind(ParsedMessage(kind=Kind.UPDATE, action=Action.TRADE, update_type=update_type, **fields))

    assert kind(UpdateType.CLOSE_ALL) == "close_all"
    assert kind(UpdateType.CLOSE_PARTIAL, update_percent=D("100")) == "close_all"
    assert kind(UpdateType.CLOSE_PARTIAL, update_percent=D("25")) == "close_partial"
    assert kind(UpdateType.CLOSE_PARTIAL) is None
    assert kind(UpdateType.SET_STOP, update_price=D("1.5")) == "set_stop"
    assert kind(UpdateType.TP_HIT, tp_index=1) == "break_even_on_tp1"
    assert kind(UpdateType.TP_HIT, tp_index=2) is None
    assert kind(UpdateType.CANCEL_ENTRIES) == "cancel_entries"


# --- the codec -------------------------------------------------------------------------------------------
_decimals = st.decimals(min_value=D("0.00000001"), max_value=D("1000000000"), allow_nan=False,
                        allow_infinity=False, places=None)


@st.composite
def exit_intents(draw: st.DrawFn) -> ExitIntent:
    kind = draw(st.sampled_from(EXIT_KINDS))
    percent = draw(st.decimals(min_value=D("0.001"), max_value=D("100"), places=3)) if kind == "close_partial" \
        else draw(st.none() | st.decimals(min_value=D("0.001"), max_value=D("100"), places=3))
    stop = draw(_decimals) if kind == "set_stop" else draw(st.none() | _decimals)
    return ExitIntent(
        update_signal_id=draw(st.integers(1, 10**9)), target_signal_id=draw(st.integers(1, 10**9)),
        channel=draw(st.text(min_size=1, max_size=30)), message_id=draw(st.integers(1, 10**9)),
        index=draw(st.integers(0, 20)), symbol=draw(st.text(min_size=1, max_size=20)),
        hold_side=draw(st.sampled_from(["long", "short"])), kind=kind, percent=percent, stop_price=stop,
    )


@given(exit_intents())
def test_codec_round_trip_keeps_every_digit(intent: ExitIntent) -> None:
    text = encode(intent)
    back = decode_exit(text)
    assert back == intent
    assert str(back.stop_price) == str(intent.stop_price) and str(back.percent) == str(intent.percent)


def test_codec_stores_decimals_as_their_exact_strings() -> None:
    intent = ExitIntent(1, 2, "c", 3, 0, "PEPEUSDT", "long", "set_stop", stop_price=D("0.0000012345678"))
    assert '"stop_price": "0.0000012345678"' in encode(intent)
    assert decode(encode(intent)).stop_price == D("0.0000012345678")


@pytest.mark.parametrize("text", [
    "", "{}", '{"type": "exit", "v": 99, "body": {}}', '{"type": "nope", "v": 1, "body": {}}',
    '{"type": "exit", "v": 1, "body": {"kind": "close_all"}}',
    '{"type": "exit", "v": 1, "body": {"update_signal_id": 1, "target_signal_id": 2, "channel": "c", '
    '"message_id": 3, "index": 0, "symbol": "X", "hold_side": "long", "kind": "set_stop", "stop_price": 1.5}}',
    '{"type": "exit", "v": 1, "body": {"update_signal_id": 1, "target_signal_id": 2, "channel": "c", '
    '"message_id": 3, "index": 0, "symbol": "X", "hold_side": "up", "kind": "close_all"}}',
])
def test_codec_refuses_what_it_did_not_write(text: str) -> None:
    with pytest.raises(IntentCodecError):
        decode(text)


# --- the exit's next step (pure) -------------------------------------------------------------------------------
def _row(oid: str, state: str, *, filled: str | None = None, error: str | None = None, size: str = "0.02") -> Any:
    from trading.journal import OrderRow, OrderState

    return OrderRow(client_oid=oid, signal_id=1, symbol="BTCUSDT", leg="close", side="sell", trade_side=None,
                    order_type="market", size=D(size), price=None, reduce_only=True, payload={},
                    state=OrderState(state), exchange_order_id=None, filled_size=D(filled) if filled else None,
                    avg_price=None, error=error, created_at=0.0, updated_at=0.0)


def _live(total: str = "0.02") -> Any:
    from exchange.bitget.models import Position

    return Position(symbol="BTCUSDT", hold_side="long", total=D(total), available=D(total), locked=D(0),
                    average_open_price=D("60000"), mark_price=D("60000"), liquidation_price=None, leverage=D(5),
                    margin_mode="isolated", unrealized_pnl=D(0), pos_mode="one_way_mode")


def _intent(kind: str, **fields: Any) -> ExitIntent:
    return ExitIntent(2, 1, "c", 9, 0, "BTCUSDT", "long", kind, **fields)  # type: ignore[arg-type]


def test_next_step_of_a_close() -> None:
    from trading import exits as ex
    from trading.reconcile import NEVER_SENT

    close_all = _intent("close_all")
    step = ex.next_step(close_all, target_decision="approved", working_entries=[], closes=[], position=None)
    assert isinstance(step, ex.Wait)
    entry = _row("e", "ACCEPTED")
    assert ex.next_step(close_all, target_decision="traded", working_entries=[entry], closes=[],
                        position=_live()) == ex.CancelEntries((entry,))
    assert ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[],
                        position=_live()) == ex.SendClose(close_all.client_oid("xc"), None)
    sent = _row(close_all.client_oid("xc"), "SUBMITTED")
    assert ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[sent],
                        position=_live()) == ex.LookUp(sent)
    filled = _row(close_all.client_oid("xc"), "FILLED", filled="0.02")
    assert ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[filled],
                        position=None) == ex.Finish(True, "closed 0.02")
    for transient in ("transient:429", NEVER_SENT):
        refused = _row(close_all.client_oid("xc"), "REJECTED", error=transient)
        assert ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[refused],
                            position=_live()) == ex.SendClose(close_all.client_oid("xc", 2), None)
    refused = _row(close_all.client_oid("xc"), "REJECTED", error="22002")
    step = ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[refused], position=_live())
    assert isinstance(step, ex.Finish) and not step.ok and "22002" in step.detail
    gone = ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[], position=None,
                        entry_filled=D("0.02"))
    assert isinstance(gone, ex.Finish) and not gone.ok and "already closed" in gone.detail
    never = ex.next_step(close_all, target_decision="traded", working_entries=[], closes=[], position=None,
                         entry_filled=D(0))
    assert isinstance(never, ex.Finish) and never.ok
    refused_signal = ex.next_step(close_all, target_decision="refused", working_entries=[], closes=[], position=None)
    assert isinstance(refused_signal, ex.Finish) and not refused_signal.ok


def test_next_step_of_a_partial_close_keeps_its_first_size() -> None:
    from trading import exits as ex

    half = _intent("close_partial", percent=D("50"))
    refused = _row(half.client_oid("xc"), "REJECTED", error="transient:429", size="0.01")
    assert ex.next_step(half, target_decision="traded", working_entries=[_row("e", "ACCEPTED")], closes=[refused],
                        position=_live("0.03")) == ex.SendClose(half.client_oid("xc", 2), D("0.01"))
    done = _row(half.client_oid("xc", 2), "FILLED", filled="0.01", size="0.01")
    assert ex.next_step(half, target_decision="traded", working_entries=[], closes=[refused, done],
                        position=_live("0.02")) == ex.Finish(True, "closed 0.01")


def test_a_damaged_exit_in_the_journal_fails_once_and_never_stops_the_others(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    good = ExitIntent(journal.record_signal(CHANNEL, 21, {}, "parsed", ""), 1, CHANNEL, 21, 0, "BTCUSDT", "long",
                      "close_all")
    bad = ExitIntent(journal.record_signal(CHANNEL, 22, {}, "parsed", ""), 1, CHANNEL, 22, 0, "BTCUSDT", "long",
                     "close_all")
    assert journal.record_exit_intent(bad, "x") and journal.record_exit_intent(good, "y")
    with sqlite3.connect(tmp_path / "journal.sqlite") as damage:  # a damaged row, as a disk fault may leave
        damage.execute("UPDATE intents SET body = ? WHERE key = ?", ('{"type": "exit"', bad.key))
    assert [row.intent for row in journal.exits(states=[IntentState.PENDING])] == [good]
    assert journal.exits(states=[IntentState.PENDING]) and len(journal.unreadable_intents()) == 1
    assert journal.signal(bad.update_signal_id).decision == "exit_failed"
    assert journal.exit(bad.key) is None
    journal.close()
