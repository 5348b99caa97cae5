"""Partial fills on the simulator: the journal follows every fill, and the take-profit ladder is re-split so
its sizes always sum exactly to the position (both position modes, long and short)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from parsing.signals import Side
from tests.order_side import OrderSide, order_side
from tests.waiting import wait_until
from trading.journal import OrderState

D = Decimal
MODES = pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
SIDES = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


def _tp_sum(om: OrderSide, hold: str) -> Decimal:
    return sum((p.size for p in om.take_profits(hold)), D(0))


def _settled(om: OrderSide, client_oid: str, hold: str) -> bool:
    """The journal has the simulator's filled size and the ladder is sized to the position."""
    orders = om.entry_orders()
    if not orders:
        return False
    (order,) = orders
    row = om.journal.order(client_oid)
    return (row is not None and row.filled_size == order.filled and order.filled > 0
            and _tp_sum(om, hold) == om.position_size(hold))


@MODES
@SIDES
def test_journal_states_and_take_profits_follow_partial_fills(tmp_path: Path, pos_mode: str, side: Side) -> None:
    with order_side(tmp_path, pos_mode=pos_mode, partial_fill_ratio="0.4") as om:
        bundle = om.entry(side, size="0.050")
        oid, hold = bundle.intent.legs[0].client_oid, side.value
        om.send(bundle)
        filled_steps: list[Decimal] = []
        for _ in range(3):
            wait_until(lambda: _settled(om, oid, hold), what="journal and ladder to follow the fill")
            (order,) = om.entry_orders()
            row = om.entry_row(bundle)
            assert order.state == "partially_filled" and row.state is OrderState.PARTIAL
            assert row.filled_size == order.filled == om.position_size(hold)
            assert _tp_sum(om, hold) == order.filled  # exactly: never more (rejected), never less (unclosed)
            filled_steps.append(order.filled)
            om.engine.set_price("BTCUSDT", om.engine.price("BTCUSDT"))  # the resting remainder fills some more
        assert filled_steps == sorted(set(filled_steps))  # it really grew at every step

        wait_until(lambda: (om.engine.set_price("BTCUSDT", om.engine.price("BTCUSDT")) and False)
                   or om.entry_orders()[0].state == "filled", what="the entry to fill completely")
        wait_until(lambda: om.entry_row(bundle).state is OrderState.FILLED and _settled(om, oid, hold),
                   what="the journal to record the complete fill")
        assert om.position_size(hold) == D("0.050")
        assert [p.size for p in om.take_profits(hold)] == [D("0.017"), D("0.017"), D("0.016")]
        def states() -> list[str]:
            return [e.detail["to"] for e in om.journal.events("RECONCILE_STATE") if e.detail["client_oid"] == oid]

        wait_until(lambda: states()[-1:] == ["FILLED"], what="the fill journaled as an event")
        assert states()[0] == "PARTIAL"


@MODES
def test_take_profits_use_the_signals_percentages(tmp_path: Path, pos_mode: str) -> None:
    with order_side(tmp_path, pos_mode=pos_mode) as om:
        bundle = om.entry(Side.SHORT, size="0.040", tp_percentages=("50", "30", "20"))
        om.send(bundle)
        wait_until(lambda: len(om.take_profits("short")) == 3, what="three take-profits")
        assert [p.size for p in om.take_profits("short")] == [D("0.020"), D("0.012"), D("0.008")]
        assert [p.trigger_price for p in om.take_profits("short")] == [t.price for t in bundle.intent.targets]


def test_a_position_too_small_for_every_target_merges_the_rest_into_the_last_step(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        bundle = om.entry(Side.LONG, size="0.002", tp_percentages=("50", "30", "20"))
        om.send(bundle)
        wait_until(lambda: len(om.take_profits("long")) == 2 and om.entry_row(bundle).state is OrderState.FILLED,
                   what="the ladder on a small position")
        assert [p.size for p in om.take_profits("long")] == [D("0.001"), D("0.001")]
        assert [p.trigger_price for p in om.take_profits("long")] == [t.price for t in bundle.intent.targets[:2]]


@SIDES
def test_an_entry_canceled_after_a_partial_fill_keeps_its_fill_protected_then_the_signal_closes(
    tmp_path: Path, side: Side
) -> None:
    hold = side.value
    with order_side(tmp_path, partial_fill_ratio="0.4") as om:
        bundle = om.entry(side, size="0.050")
        om.send(bundle)
        wait_until(lambda: om.position_size(hold) > 0 and _tp_sum(om, hold) == om.position_size(hold),
                   what="a protected partial fill")
        om.engine.cancel_order("BTCUSDT", client_oid=bundle.intent.legs[0].client_oid)
        wait_until(lambda: om.entry_row(bundle).state is OrderState.CANCELED, what="the cancel journaled")
        row = om.entry_row(bundle)
        assert row.filled_size == om.position_size(hold) == om.stop_cover(hold)
        assert om.journal.open_signals("BTCUSDT")  # its position is still there

        om.engine.partial_fill_ratio = None  # the close below fills at once
        om.engine.close_positions("BTCUSDT")
        wait_until(lambda: not om.journal.open_signals("BTCUSDT"), what="the signal closed with its position")
        wait_until(lambda: om.journal.events("RECONCILE_SIGNAL_CLOSED"), what="the close journaled")


def test_a_signal_whose_entry_was_canceled_unfilled_is_closed(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        bundle = om.entry(Side.LONG, size="0.020", zone_pct=("2", "2.5"))  # rests below the market
        om.send(bundle)
        wait_until(lambda: om.entry_orders(), what="the resting entry")
        om.engine.cancel_order("BTCUSDT", client_oid=bundle.intent.legs[0].client_oid)
        wait_until(lambda: not om.journal.open_signals("BTCUSDT"), what="the signal closed")
        assert om.entry_row(bundle).state is OrderState.CANCELED
