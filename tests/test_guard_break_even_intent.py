"""The guard's own break-even move (first target filled) is an exit intent: journaled before the OrderManager is
told, resumed at start-up when the process died in between, done exactly once, and marked done only from what the
exchange shows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from parsing.signals import Side
from tests.order_side import CHANNEL, OrderSide, order_side
from tests.waiting import wait_until
from trading.bundle import break_even_stop
from trading.intents import ExitIntent, decode_exit, encode, first_target_break_even
from trading.journal import IntentState

D = Decimal
BUFFER = D("0.001")  # the OrderManager's default break-even buffer


def _open(om: OrderSide, side: Side) -> int:
    bundle = om.entry(side, size="0.020", market=True)
    om.send(bundle)
    wait_until(lambda: om.position_size(side.value) == D("0.020"), what="the entry filled")
    wait_until(lambda: om.journal.signal(bundle.signal_id).decision == "traded", what="the signal traded")
    wait_until(lambda: len(om.stops(side.value)) == 1, what="the entry's stop")
    return bundle.signal_id


def _journal_move(om: OrderSide, signal_id: int, side: Side) -> ExitIntent:
    """What the PositionGuard journals when it sees the first target filled (before telling the OrderManager)."""
    signal = om.journal.signal(signal_id)
    assert signal is not None
    move = first_target_break_even(signal_id, channel=signal.channel, message_id=signal.message_id,
                                   index=signal.index, symbol="BTCUSDT", hold_side=side.value)
    assert om.journal.record_exit_intent(move, "first target filled")
    assert not om.journal.record_exit_intent(move, "first target filled"), "one move per signal"
    return move


def _expected(om: OrderSide, side: Side) -> Decimal:
    position = om.engine.position("BTCUSDT", side.value)
    assert position is not None
    return break_even_stop(position.average_price, side.value, BUFFER, om.engine.contract("BTCUSDT"))


@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_break_even_journaled_then_killed_before_the_send_is_moved_once_after_restart(
    tmp_path: Path, side: Side
) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        signal_id = _open(om, side)
        (old,) = om.stops(side.value)
        om.stop_manager()  # the guard journaled the move, the process died before the OrderManager was told
        move = _journal_move(om, signal_id, side)
        price = om.engine.price("BTCUSDT")
        om.engine.set_price("BTCUSDT", price * (D("1.004") if side is Side.LONG else D("0.996")))  # in profit
        om.start_manager()
        expected = _expected(om, side)
        wait_until(lambda: (row := om.journal.exit(move.key)) is not None and row.state is IntentState.DONE,
                   what="the move resumed at start-up")
        stops = om.stops(side.value)
        assert [p.trigger_price for p in stops] == [expected]
        assert stops[0].order_id != old.order_id, "a new stop, the old one cancelled"

        om.restart_manager()  # and again: nothing is sent a second time
        wait_until(lambda: om.status.get("orders_reconciled"), what="the restarted instance reconciled")
        assert [p.trigger_price for p in om.stops(side.value)] == [expected]
        assert len([e for e in om.journal.events("STOP_MOVED") if e.detail.get("stop") == str(expected)]) == 1
        target = om.journal.signal(signal_id)
        assert target is not None and target.decision == "traded", "the target's own decision is untouched"
        assert not any(n.kind == "EXIT_NOT_EXECUTED" for n in om.notices)


def test_a_guard_move_without_a_position_fails_quietly(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        signal_id = _open(om, Side.LONG)
        om.stop_manager()
        om.engine.set_price("BTCUSDT", om.engine.price("BTCUSDT") * D("0.5"))  # the stop fired meanwhile
        wait_until(lambda: om.position_size("long") == 0, what="the stop closed the position")
        move = _journal_move(om, signal_id, Side.LONG)
        om.start_manager()
        wait_until(lambda: (row := om.journal.exit(move.key)) is not None and row.state is IntentState.FAILED,
                   what="the move finished")
        assert not any(n.kind in ("EXIT_NOT_EXECUTED", "STOP_NOT_MOVED") for n in om.notices)


def test_the_guard_intent_has_its_own_client_ids_and_survives_the_codec() -> None:
    move = first_target_break_even(7, channel=CHANNEL, message_id=42, index=0, symbol="BTCUSDT", hold_side="short")
    channel_update = ExitIntent(update_signal_id=8, target_signal_id=7, channel=CHANNEL, message_id=42, index=0,
                                symbol="BTCUSDT", hold_side="short", kind="break_even_on_tp1")
    assert move.key != channel_update.key
    assert decode_exit(encode(move)) == move
    assert decode_exit(encode(channel_update)) == channel_update
    with pytest.raises(ValueError):
        ExitIntent(update_signal_id=7, target_signal_id=7, channel=CHANNEL, message_id=42, index=0, symbol="BTCUSDT",
                   hold_side="long", kind="close_all", origin="guard")
