"""A partially filled entry has a stop covering exactly its filled size on the simulator, re-sized after the
next fill: with the stop attached to the entry (the exchange sizes it to the fill) and with the stop placed
by the order side after the fill. Both position modes, long and short."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from parsing.signals import Side
from tests.e2e import running_system
from tests.order_side import OrderSide, order_side
from tests.waiting import wait_until
from trading.journal import OrderState

D = Decimal
MODES = pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
SIDES = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
ATTACH = pytest.mark.parametrize("attach_stop", [True, False], ids=["attached", "after_fill"])


def _covered_exactly(om: OrderSide, hold: str) -> Decimal | None:
    """The position size when the live stops cover exactly that much (and it is not zero)."""
    size = om.position_size(hold)
    return size if size > 0 and om.stop_cover(hold) == size else None


@ATTACH
@MODES
@SIDES
def test_partially_filled_entry_has_a_stop_for_exactly_the_filled_size(
    tmp_path: Path, attach_stop: bool, pos_mode: str, side: Side
) -> None:
    hold = side.value
    with order_side(tmp_path, pos_mode=pos_mode, attach_stop=attach_stop, partial_fill_ratio="0.4") as om:
        bundle = om.entry(side, size="0.050")
        om.send(bundle)
        first = wait_until(lambda: _covered_exactly(om, hold), what="a stop covering the first fill")
        (order,) = om.entry_orders()
        assert order.state == "partially_filled" and first == order.filled < D("0.050")
        stop_price = bundle.intent.stop_price
        assert {p.trigger_price for p in om.stops(hold)} == {stop_price}

        om.engine.set_price("BTCUSDT", om.engine.price("BTCUSDT"))  # the next fill
        second = wait_until(lambda: (c := _covered_exactly(om, hold)) and c > first and c,
                            what="the stop re-sized to the grown position")
        assert second == om.entry_orders()[0].filled
        if attach_stop:
            assert not om.journal.events("RECONCILE_STOP_PLACED")  # the exchange's own attached stop grew
        else:
            # One stop plan of ours, grown in place (not a pile of stops), journaled under the signal.
            (stop,) = om.stops(hold)
            assert stop.plan_type == "loss_plan" and stop.size == second
            stop_rows = [r for r in om.journal.orders(signal_id=bundle.signal_id) if r.leg == "sl"]
            assert len(stop_rows) == 1 and stop_rows[0].state is OrderState.ACCEPTED
            wait_until(lambda: om.journal.events("RECONCILE_STOP_RESIZED"), what="the resize journaled")


@MODES
@SIDES
def test_a_market_entry_without_attached_stop_is_covered_right_after_its_fill(
    tmp_path: Path, pos_mode: str, side: Side
) -> None:
    hold = side.value
    with order_side(tmp_path, pos_mode=pos_mode, attach_stop=False) as om:
        bundle = om.entry(side, size="0.030", market=True)
        om.send(bundle)
        wait_until(lambda: _covered_exactly(om, hold) == D("0.030"), what="the stop on the filled market entry")
        (order,) = om.entry_orders()
        assert order.preset_stop_loss is None and order.state == "filled"


def test_runtime_with_stops_not_attached_places_its_own_stop_on_the_fill(tmp_path: Path) -> None:
    """The configuration switch reaches the OrderManager: no preset on the entry, our stop plan on the fill."""
    with running_system(tmp_path, risk={"cooldown_seconds": 0, "stoploss": {"attach_to_entry": False}}) as system:
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (entry,) = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry")
        assert entry.preset_stop_loss is None
        stop = wait_until(lambda: [p for p in system.stop_plans("BTCUSDT") if p.plan_type == "loss_plan"],
                          what="the stop plan placed on the fill")
        position = system.engine.position("BTCUSDT", "long")
        assert position is not None and stop[0].size == position.size


@SIDES
def test_an_uncovered_fill_whose_stop_the_market_passed_is_closed(tmp_path: Path, side: Side) -> None:
    hold = side.value
    with order_side(tmp_path, attach_stop=False) as om:
        om.engine.faults.reject_next("place-tpsl-order", "40915", "stop on the wrong side", times=100)
        bundle = om.entry(side, size="0.030", market=True)
        om.send(bundle)
        refusals = lambda: len([n for n in om.notices if n.kind == "STOP_REFUSED"])  # noqa: E731
        wait_until(lambda: refusals() == 5, what="five refusals")
        passes = len(om.engine.requests_to("orders-pending"))
        wait_until(lambda: len(om.engine.requests_to("orders-pending")) >= passes + 3, what="three more passes")
        assert refusals() == 5  # the order side gave up (the guard's repair and protective close take over)
        assert om.position_size(hold) == D("0.030") and om.stop_cover(hold) == 0
        stop = bundle.intent.stop_price
        om.engine.set_price("BTCUSDT", stop * (D("0.995") if side is Side.LONG else D("1.005")))
        wait_until(lambda: om.position_size(hold) == 0, what="the uncovered position closed")
        wait_until(lambda: om.journal.events("RECONCILE_UNCOVERED_CLOSED"), what="the close journaled")
        # The notice is sent just after the journal event, on the actor's thread: wait for it too.
        wait_until(lambda: "PROTECTIVE_CLOSE" in [n.kind for n in om.notices], what="the protective-close notice")
