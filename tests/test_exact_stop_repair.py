"""A stop repair puts back the stop the position should have *now* (moved to break-even, or by a channel's
set-stop), exactly, on the tick grid away from the entry; no price passes through a float on the way."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from actors.messages import ExecuteExit, MoveStopToBreakEven, RepairStop
from exchange.bitget.models import Position
from exchange.sim.catalogue import DEFAULT_CONTRACTS
from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage, Side, UpdateType
from parsing.vlm.client import decode_reply
from tests.order_side import OrderSide, order_side
from tests.vlm_helpers import image_answer
from tests.waiting import wait_until
from trading.bundle import break_even_stop
from trading.exits import exit_kind
from trading.guard import current_stop
from trading.intents import ExitIntent

D = Decimal

# BTC with four price decimals: prices of nine significant digits and more.
FINE_BTC = tuple(dataclasses.replace(c, price_place=4) if c.symbol == "BTCUSDT" else c for c in DEFAULT_CONTRACTS)
BTC_TICK_01 = next(c for c in DEFAULT_CONTRACTS if c.symbol == "BTCUSDT")


def _position(hold_side: str, entry: str) -> Position:
    return Position(symbol="BTCUSDT", hold_side=hold_side, total=D("0.01"), available=D("0.01"),
                    average_open_price=D(entry), margin_mode="isolated", leverage=5, mark_price=D(entry),
                    locked=D(0), liquidation_price=None, unrealized_pnl=D(0), pos_mode="one_way_mode")


def test_a_reading_keeps_its_prices_as_exact_text_in_json() -> None:
    reading = ParsedMessage(kind=Kind.ENTRY, action=Action.TRADE, symbol="BTCUSDT", side=Side.LONG,
                            entries=(D("65012.345678901234567"),), stop_loss=D("0.000012345678901"),
                            take_profits=(D("70000.000000000000001"),), update_percent=D("33.3333333333"))
    plain = reading.to_json()
    assert plain["entries"] == ["65012.345678901234567"]
    assert plain["stop_loss"] == "0.000012345678901"
    assert plain["take_profits"] == ["70000.000000000000001"]
    assert plain["update_percent"] == "33.3333333333"


def test_parsed_text_prices_reach_the_json_digit_for_digit() -> None:
    (reading,) = parse_text("BTCUSDT LONG\nEntry: 65012.34567\nStop loss: 64000.12345\nTP1: 66000.98765")
    assert reading.to_json()["stop_loss"] == "64000.12345"


@pytest.mark.parametrize(("hold_side", "entry", "stop", "expected"), [
    ("long", "65000.0", "64999.95", "64999.9"),  # half-up would round toward the entry (65000.0)
    ("short", "65000.0", "65000.05", "65000.1"),
    ("long", "65000.0", "65100.05", "65100.1"),  # a long's break-even stop sits above the entry: up
    ("short", "65000.0", "64899.95", "64899.9"),
])
def test_the_current_stop_is_rounded_away_from_the_entry(hold_side: str, entry: str, stop: str,
                                                          expected: str) -> None:
    position = _position(hold_side, entry)
    got = current_stop(position, moved=None, signal_stop=D(stop), contract=BTC_TICK_01)
    assert str(got) == expected


def test_a_moved_stop_wins_over_the_signals() -> None:
    position = _position("long", "65000.0")
    got = current_stop(position, moved=D("65065.0"), signal_stop=D("64350.0"), contract=BTC_TICK_01)
    assert got == D("65065.0")
    assert current_stop(position, moved=None, signal_stop=None, contract=BTC_TICK_01) is None


def _open_long(side: OrderSide) -> None:
    side.send(side.entry(Side.LONG, size="0.010"))
    wait_until(lambda: side.position_size("long") == D("0.010"), what="the long filled")
    wait_until(lambda: side.stops("long"), what="its stop")


def _remove_stops_and_repair(side: OrderSide) -> str:
    for plan in side.stops("long"):
        side.engine.cancel_plan_orders("BTCUSDT", plan_type="profit_loss", ids=[(plan.order_id, None)])
    assert side.stops("long") == []
    assert side.ref is not None
    side.ref.tell(RepairStop("BTCUSDT", "long", D("0.010"), "stop gone"))
    # The repair, or a reconciliation pass that got there first: either must put back the same stop.
    (stop,) = wait_until(lambda: side.stops("long"), what="the stop put back")
    return str(stop.trigger_price)


@pytest.mark.slow
def test_a_repair_after_break_even_puts_back_the_break_even_stop(tmp_path: Path) -> None:
    # No regular pass: one between removing the stops and the RepairStop would put a stop back first.
    with order_side(tmp_path, contracts=FINE_BTC, check_interval_s=3600) as side:
        _open_long(side)
        engine = side.engine
        contract = engine.contract("BTCUSDT")
        engine.set_price("BTCUSDT", contract.round_price(engine.price("BTCUSDT") * D("1.005")))
        entry = engine.position("BTCUSDT", "long").average_price
        expected = break_even_stop(entry, "long", D("0.001"), contract)
        assert side.ref is not None
        side.ref.tell(MoveStopToBreakEven("BTCUSDT", "long", "first target filled"))
        wait_until(lambda: [p.trigger_price for p in side.stops("long")] == [expected], what="stop at break-even")

        assert D(_remove_stops_and_repair(side)) == expected


@pytest.mark.slow
def test_a_repair_after_a_set_stop_puts_back_that_stop_digit_for_digit(tmp_path: Path) -> None:
    # No regular pass: one between removing the stops and the RepairStop would put a stop back first.
    with order_side(tmp_path, contracts=FINE_BTC, check_interval_s=3600) as side:
        _open_long(side)
        entry = side.engine.position("BTCUSDT", "long").average_price
        wanted = (entry * D("0.995")).quantize(D("1")) + D("0.12349")  # ten significant digits, off the grid
        set_stop = ParsedMessage(kind=Kind.UPDATE, action=Action.TRADE, symbol="BTCUSDT",
                                 update_type=UpdateType.SET_STOP, update_price=wanted)
        signal_id = side.journal.open_signals("BTCUSDT")[0].id
        assert side.ref is not None
        update_id = side.journal.record_signal("order_side", 9001, set_stop.to_json(), "parsed", "", symbol="BTCUSDT")
        kind = exit_kind(set_stop)
        assert kind == "set_stop"
        intent = ExitIntent(update_signal_id=update_id, target_signal_id=signal_id, channel="order_side",
                            message_id=9001, index=0, symbol="BTCUSDT", hold_side="long", kind=kind,
                            stop_price=set_stop.update_price)
        side.journal.record_exit_intent(intent, "set stop")  # as the RiskGate journals it before telling
        side.ref.tell(ExecuteExit(intent))
        on_grid = str(wanted)[:-1]  # a long's stop goes down to the grid (...1234), never up toward the price
        assert on_grid.endswith(".1234")
        wait_until(lambda: [str(p.trigger_price) for p in side.stops("long")] == [on_grid], what="the set stop")

        assert _remove_stops_and_repair(side) == on_grid


def test_a_model_answer_keeps_its_prices_exact() -> None:
    text = json.dumps(image_answer()).replace("145.2", "145.20000000000000001")
    text = text.replace("150.5", "150.49999999999999999")
    answer = decode_reply(text)
    assert answer.stop_loss == D("145.20000000000000001")
    assert answer.entries == [D("150.49999999999999999")]


@pytest.mark.slow
def test_reconciliation_after_break_even_puts_back_the_break_even_stop(tmp_path: Path) -> None:
    """The periodic reconciliation (not only a RepairStop) restores the moved stop, not the signal's first one."""
    with order_side(tmp_path, contracts=FINE_BTC) as side:
        _open_long(side)
        engine = side.engine
        contract = engine.contract("BTCUSDT")
        engine.set_price("BTCUSDT", contract.round_price(engine.price("BTCUSDT") * D("1.005")))
        entry = engine.position("BTCUSDT", "long").average_price
        expected = break_even_stop(entry, "long", D("0.001"), contract)
        assert side.ref is not None
        side.ref.tell(MoveStopToBreakEven("BTCUSDT", "long", "first target filled"))
        wait_until(lambda: [p.trigger_price for p in side.stops("long")] == [expected], what="stop at break-even")
        for plan in side.stops("long"):
            side.engine.cancel_plan_orders("BTCUSDT", plan_type="profit_loss", ids=[(plan.order_id, None)])
        restored = wait_until(lambda: side.stops("long"), what="a stop put back by reconciliation")
        assert [p.trigger_price for p in restored] == [expected]
