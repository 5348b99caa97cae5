"""Pure execution and guarding rules: partial closes, close orders per position mode, stop coverage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.bitget.contracts import Contract
from exchange.bitget.models import Order, PlanOrder, Position
from trading.execution import close_request, default_stop, journal_state, partial_close_size, stop_is_valid
from trading.guard import StopWatch, liquidation_distance, position_has_stop, stop_plans_for
from trading.journal import OrderState

BTC = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, Decimal("0.001"), Decimal("0.001"), Decimal("5"), 125)


def position(side: str = "long", total: str = "0.010", **extra: object) -> Position:
    fields: dict[str, object] = dict(
        symbol="BTCUSDT", hold_side=side, total=Decimal(total), available=Decimal(total), locked=Decimal(0),
        average_open_price=Decimal("65000"), mark_price=Decimal("65100"), liquidation_price=Decimal("52000"),
        leverage=Decimal(5), margin_mode="isolated", unrealized_pnl=Decimal(0), pos_mode="one_way_mode",
    )
    fields.update(extra)
    return Position(**fields)  # type: ignore[arg-type]


def plan(plan_type: str, size: str | None, pos_side: str | None = "long", symbol: str = "BTCUSDT") -> PlanOrder:
    return PlanOrder(order_id="1", client_oid=None, symbol=symbol, plan_type=plan_type,
                     trigger_price=Decimal("64000"), trigger_type="mark_price", execute_price=None,
                     size=Decimal(size) if size else None, side=None, trade_side=None, pos_side=pos_side,
                     status="live")


@pytest.mark.parametrize(("total", "percent", "expected"), [
    ("0.010", "50", "0.005"),
    ("0.010", "100", "0.010"),
    ("0.010", "95", "0.009"),
    ("0.010", "5", "0"),       # half a step: too small to send
    ("0.0105", "33", "0.003"),  # rounded down to the step
])
def test_partial_close_size(total: str, percent: str, expected: str) -> None:
    assert partial_close_size(position(total=total), Decimal(percent), BTC) == Decimal(expected)


def test_partial_close_takes_it_all_when_the_rest_would_be_dust() -> None:
    coarse = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, Decimal("0.001"), Decimal("0.003"), Decimal("5"), 125)
    assert partial_close_size(position(total="0.010"), Decimal("85"), coarse) == Decimal("0.010")
    assert partial_close_size(position(total="0.010"), Decimal("50"), coarse) == Decimal("0.005")


@pytest.mark.parametrize(("side", "mode", "order_side", "trade_side", "reduce_only"), [
    ("long", "one_way_mode", "sell", None, True),
    ("short", "one_way_mode", "buy", None, True),
    ("long", "hedge_mode", "buy", "close", False),
    ("short", "hedge_mode", "sell", "close", False),
])
def test_close_request_per_position_mode(side: str, mode: str, order_side: str, trade_side: str | None,
                                         reduce_only: bool) -> None:
    request = close_request(position(side), mode, "oid1", Decimal("0.004"))
    assert (request.side, request.trade_side, request.reduce_only) == (order_side, trade_side, reduce_only)
    assert request.size == Decimal("0.004") and request.order_type == "market"
    assert close_request(position(side), mode, "oid2").size == Decimal("0.010")


def test_canceled_after_a_partial_fill_is_not_treated_as_nothing() -> None:
    def order(state: str, filled: str) -> Order:
        return Order(order_id="1", client_oid="c", symbol="BTCUSDT", side="buy", trade_side=None,
                     order_type="limit", size=Decimal("0.010"), price=Decimal("65000"),
                     filled_size=Decimal(filled), avg_price=None, state=state, reduce_only=False, pos_side=None,
                     c_time=0, u_time=0)

    assert journal_state(order("canceled", "0")) is OrderState.CANCELED
    assert journal_state(order("canceled", "0.004")) is OrderState.CANCELED  # done; the fill is a position
    assert journal_state(order("partially_filled", "0.004")) is OrderState.PARTIAL
    assert journal_state(order("filled", "0.010")) is OrderState.FILLED


def test_stops_sit_on_the_loss_side() -> None:
    assert stop_is_valid("long", Decimal(64000), Decimal(65000))
    assert not stop_is_valid("long", Decimal(65500), Decimal(65000))
    assert stop_is_valid("short", Decimal(66000), Decimal(65000))
    assert default_stop(position("long"), Decimal("0.01"), BTC) == Decimal("64350.0")
    assert default_stop(position("short"), Decimal("0.01"), BTC) == Decimal("65650.0")


def test_stop_coverage_counts_sizes_and_ignores_other_positions() -> None:
    pos = position("long", "0.010")
    assert not position_has_stop(pos, [], "one_way_mode")
    assert position_has_stop(pos, [plan("pos_loss", None, "buy")], "one_way_mode")
    # A sized stop smaller than the position (it grew by a partial fill) does not cover it.
    assert not position_has_stop(pos, [plan("loss_plan", "0.004")], "hedge_mode")
    assert position_has_stop(pos, [plan("loss_plan", "0.004"), plan("loss_plan", "0.006")], "hedge_mode")
    # Take-profits, other symbols and the other side are not stops of this position.
    others = [plan("profit_plan", None), plan("pos_loss", None, symbol="ETHUSDT"), plan("pos_loss", None, "short")]
    assert stop_plans_for(pos, others, "hedge_mode") == []
    assert position_has_stop(position("long", stop_loss=Decimal("64000")), [], "hedge_mode")


def test_stop_watch_repairs_then_gives_up_once() -> None:
    watch = StopWatch(repair_timeout_s=5)
    key = ("BTCUSDT", "long")
    assert watch.observe(key, False, now=0) == "missing"
    assert watch.observe(key, False, now=3) == "still_missing"
    assert watch.observe(key, False, now=6) == "expired"
    assert watch.observe(key, False, now=7) == "closing"
    assert watch.observe(key, True, now=8) == "ok"
    assert watch.observe(key, False, now=9) == "missing"
    watch.forget_except(set())
    assert watch.observe(key, False, now=100) == "missing"


def test_liquidation_distance() -> None:
    assert liquidation_distance(position()) == (Decimal("65100") - Decimal("52000")) / Decimal("65100")
    assert liquidation_distance(position(liquidation_price=None)) is None
