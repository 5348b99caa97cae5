"""Stop to break-even: once the first target fills on the exchange, the stop moves to the entry plus the buffer
on the profit side, and the new stop is placed before the old one is cancelled (never a moment without one)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.bundle import break_even_stop
from trading.guard import first_target_taken

BUFFER = Decimal("0.002")
D = Decimal


@pytest.mark.parametrize(
    ("plan_id", "live", "size", "filled", "taken"),
    [
        ("tp1", ["sl"], "0.5", "1.0", True),
        ("tp1", ["tp1", "sl"], "0.5", "1.0", False),  # the plan still waits: a manual partial close
        ("tp1", ["sl"], "1.0", "1.0", False),  # gone but nothing was taken (cancelled by hand)
        ("tp1", [], "0", "1.0", False),  # gone with the whole position
        (None, [], "0.5", "1.0", False),  # never placed
    ],
)
def test_first_target_taken(plan_id: str | None, live: list[str], size: str, filled: str, taken: bool) -> None:
    assert first_target_taken(plan_id, live, D(size), D(filled)) is taken


def signal(system: System, side: str) -> str:
    """A zone entry around the live price with two targets, the stop 1% away."""
    p = system.price
    if side == "long":
        zone, targets, stop = ("0.9995", "1.0005"), ("1.01", "1.02"), "0.99"
    else:
        zone, targets, stop = ("1.0005", "0.9995"), ("0.99", "0.98"), "1.01"
    return (
        f"#BTC/USDT {side.upper()}\nEntry Zone: {p('BTCUSDT', zone[0])} - {p('BTCUSDT', zone[1])}\n"
        f"Take-Profit Targets:\n1) {p('BTCUSDT', targets[0])}\n2) {p('BTCUSDT', targets[1])}\n"
        f"Stop Targets:\n1) {p('BTCUSDT', stop)}\nLeverage: Isolated (5X)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
@pytest.mark.parametrize("side", ["long", "short"])
def test_first_target_fill_moves_the_stop_to_break_even_new_stop_first(
    tmp_path: Path, side: str, pos_mode: str
) -> None:
    risk = {"cooldown_seconds": 0, "stoploss": {"break_even_buffer_pct": float(BUFFER)}}
    with running_system(tmp_path, risk=risk, bitget={"position_mode": pos_mode}) as system:
        engine = system.engine
        system.channel.add_post(signal(system, side))
        targets = wait_until(
            lambda: len(ladder := [p for p in engine.plan_orders("BTCUSDT") if p.plan_type == "profit_plan"]) == 2
            and sorted(ladder, key=lambda p: abs(p.trigger_price - engine.price("BTCUSDT"))),
            what="the take-profit ladder")
        position = system.open_positions()[0]
        assert position.hold_side == side
        opened, entry = position.size, position.average_price
        (old_stop,) = system.stop_plans("BTCUSDT")
        assert (old_stop.trigger_price < entry) if side == "long" else (old_stop.trigger_price > entry)

        engine.set_price("BTCUSDT", targets[0].trigger_price)  # the market reaches the first target only
        wait_until(lambda: system.open_positions()[0].size < opened, what="the first target filled")
        expected = break_even_stop(entry, side, BUFFER, engine.contract("BTCUSDT"))

        def only_break_even_stop() -> list:
            stops = system.stop_plans("BTCUSDT")
            return stops if [p.trigger_price for p in stops] == [expected] else []

        (moved,) = wait_until(only_break_even_stop, what="the one stop, at break-even")
        assert moved.order_id != old_stop.order_id

        assert (expected > entry) if side == "long" else (expected < entry), "the buffer is on the profit side"
        assert abs(expected - entry) / entry <= BUFFER * Decimal("1.01")
        assert engine.find_plan(order_id=old_stop.order_id).status == "cancelled"
        assert system.open_positions()[0].size == opened - targets[0].size, "the rest of the position stays open"

        # Order of events on the exchange: the new stop was accepted before the old one was cancelled.
        # (The simulator logs a request once its reply is sent, so wait for the cancel's entry.)
        wait_until(lambda: engine.requests_to("cancel-plan-order"), what="the cancel logged")
        log = engine.request_log
        placed = next(i for i, r in enumerate(log) if r.endpoint == "place-tpsl-order" and r.code == "00000"
                      and Decimal(str(r.params.get("triggerPrice"))) == expected)
        cancelled = next(i for i, r in enumerate(log) if r.endpoint == "cancel-plan-order" and r.code == "00000")
        assert placed < cancelled

        journal = system.runtime.journal
        assert journal is not None
        wait_until(lambda: journal.events("STOP_MOVED"), what="the move journaled")
        assert len(journal.events("FIRST_TARGET_FILLED")) == 1
        assert [e.detail["stop"] for e in journal.events("STOP_MOVED")] == [str(expected)]
