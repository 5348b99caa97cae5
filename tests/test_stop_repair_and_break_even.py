"""The OrderManager alone against the simulator: a stop repair covers exactly the part no stop covers, and a
break-even move the exchange refuses is asked again a bounded number of times, each refusal journaled."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.messages import MoveStopToBreakEven, RepairStop
from exchange.bitget.contracts import Contract
from parsing.signals import Side
from tests.order_side import order_side
from tests.waiting import wait_until
from trading.bundle import break_even_stop

pytestmark = pytest.mark.slow

D = Decimal
STOP_REFUSED = ("40891", "Insufficient position, can not set take profit or stop loss")
STOP_TYPES = ("loss_plan", "pos_loss")


def _stop_sizes(engine: object, symbol: str) -> list[Decimal | None]:
    return sorted((p.size for p in engine.plan_orders(symbol) if p.plan_type in STOP_TYPES),  # type: ignore[attr-defined]
                  key=lambda size: size or D(0))


def test_a_repair_of_a_partly_covered_position_adds_a_stop_for_the_uncovered_part_only(tmp_path: Path) -> None:
    with order_side(tmp_path) as side:
        engine = side.engine
        engine.place_order("ETHUSDT", side="buy", size=D("0.10"), margin_mode="isolated")  # opened by hand
        below = engine.contract("ETHUSDT").round_price(engine.price("ETHUSDT") * D("0.98"))
        engine.place_tpsl_order("ETHUSDT", plan_type="loss_plan", trigger_price=below, hold_side="buy",
                                size=D("0.04"))
        assert side.ref is not None
        side.ref.tell(RepairStop("ETHUSDT", "long", D("0.10"), "stop covers part of the position"))

        wait_until(lambda: len(_stop_sizes(engine, "ETHUSDT")) == 2, what="a second stop")
        assert _stop_sizes(engine, "ETHUSDT") == [D("0.04"), D("0.06")], "sized to the gap, not the whole"
        (repaired,) = wait_until(lambda: side.journal.events("STOP_REPAIRED"), what="the repair journaled")
        assert repaired.detail["size"] == "0.06"

        side.ref.ask(RepairStop("ETHUSDT", "long", D("0.10"), "asked again"))  # covered now: nothing more
        assert len(_stop_sizes(engine, "ETHUSDT")) == 2


def _long_in_profit(side: object) -> tuple[Decimal, Contract]:
    bundle = side.entry(Side.LONG, size="0.010")  # type: ignore[attr-defined]
    side.send(bundle)  # type: ignore[attr-defined]
    engine = side.engine  # type: ignore[attr-defined]
    wait_until(lambda: side.position_size("long") == D("0.010"), what="the long filled")  # type: ignore[attr-defined]
    wait_until(lambda: side.stops("long"), what="its stop")  # type: ignore[attr-defined]
    # The take-profit ladder is in place too: the faults below are for the stop alone.
    wait_until(lambda: len(side.take_profits("long")) == 3, what="the ladder")  # type: ignore[attr-defined]
    engine.set_price("BTCUSDT", engine.contract("BTCUSDT").round_price(engine.price("BTCUSDT") * D("1.005")))
    position = engine.position("BTCUSDT", "long")
    return position.average_price, engine.contract("BTCUSDT")


def test_a_refused_break_even_move_is_retried_until_it_is_placed(tmp_path: Path) -> None:
    with order_side(tmp_path) as side:
        entry, contract = _long_in_profit(side)
        expected = break_even_stop(entry, "long", D("0.001"), contract)
        side.engine.faults.reject_next("place-tpsl-order", *STOP_REFUSED, times=2)
        assert side.ref is not None
        side.ref.tell(MoveStopToBreakEven("BTCUSDT", "long", "first target filled"))

        wait_until(lambda: [p.trigger_price for p in side.stops("long")] == [expected], timeout=10,
                   what="the stop at break-even, the old one gone")
        retries = [e.detail for e in side.journal.events("BREAK_EVEN_RETRY")]
        assert [r["attempt"] for r in retries] == [1, 2]
        assert side.journal.events("BREAK_EVEN_FAILED") == []


def test_a_break_even_move_refused_every_time_gives_up_journaled_and_keeps_the_old_stop(tmp_path: Path) -> None:
    with order_side(tmp_path) as side:
        _long_in_profit(side)
        (old,) = side.stops("long")
        side.engine.faults.reject_next("place-tpsl-order", *STOP_REFUSED, times=10)
        assert side.ref is not None
        side.ref.tell(MoveStopToBreakEven("BTCUSDT", "long", "first target filled"))

        (failed,) = wait_until(lambda: side.journal.events("BREAK_EVEN_FAILED"), timeout=10, what="given up")
        assert failed.detail["attempt"] == 4
        assert len(side.journal.events("BREAK_EVEN_RETRY")) == 3
        assert [p.order_id for p in side.stops("long")] == [old.order_id], "the previous stop stays"
        wait_until(lambda: any(n.kind == "STOP_NOT_MOVED" for n in side.notices), what="the operator told")
