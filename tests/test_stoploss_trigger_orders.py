"""Stops as exchange trigger orders, over loopback: placed by BitgetClient, fired by the simulator.

Every case runs in one-way and hedge mode, for a long and a short: the TP/SL ``holdSide`` is buy/sell in
one-way mode and long/short in hedge mode, and a plan order that closes is ``reduceOnly`` (one-way) or
``tradeSide=close`` with the position's side (hedge). The position closing on the simulator without any
further request from us is what "the stop is on the exchange" means.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import InvalidParameter, InvalidTriggerPrice, OrderNotFound
from exchange.bitget.models import OrderRequest, PlanOrderRequest, TpslRequest
from exchange.bitget.ratelimit import Backoff, RateLimiter
from exchange.bitget.semantics import order_fields, tpsl_hold_side

sim_testing = pytest.importorskip("exchange.sim.testing")

SYMBOL = "BTCUSDT"
ENTRY = Decimal("65000")
SIZE = Decimal("0.010")
CASES = [
    pytest.param(pos_mode, side, id=f"{pos_mode}-{side}")
    for pos_mode in ("one_way_mode", "hedge_mode")
    for side in ("long", "short")
]


def away(side: str, pct: str) -> Decimal:
    """A price ``pct`` percent against a position on ``side`` (where its stop sits)."""
    move = ENTRY * Decimal(pct) / 100
    return ENTRY - move if side == "long" else ENTRY + move


def toward(side: str, pct: str) -> Decimal:
    """A price ``pct`` percent in favour of a position on ``side`` (where its take-profit sits)."""
    return away("short" if side == "long" else "long", pct)


@pytest.fixture
def sim() -> Iterator[Any]:
    with sim_testing.running_sim(seed=21) as running:
        running.engine.set_price(SYMBOL, ENTRY)
        yield running


@pytest.fixture
def client(sim: Any) -> BitgetClient:
    client = sim.client(
        timeout=3.0,
        rate_limiter=RateLimiter(sleep=lambda s: None),
        backoff=Backoff(sleep=lambda s: None),
        sleep=lambda s: None,
    )
    client.contracts()
    return client


def open_position(client: BitgetClient, pos_mode: str, side: str, **preset: Decimal) -> str:
    client.set_position_mode(pos_mode)
    order_side, trade_side, _ = order_fields(side, pos_mode, closing=False)  # type: ignore[arg-type]
    placed = client.place_order(
        OrderRequest(
            symbol=SYMBOL, side=order_side, size=SIZE, order_type="market", trade_side=trade_side,
            client_oid=f"entry-{pos_mode}-{side}", margin_mode="crossed", **preset,
        )
    )  # fmt: skip
    (position,) = client.position(SYMBOL)
    assert position.hold_side == side and position.total == SIZE
    assert placed.order_id
    return placed.order_id or ""


def stops(client: BitgetClient) -> list[Any]:
    return client.plan_orders_pending("profit_loss", SYMBOL)


@pytest.mark.parametrize(("pos_mode", "side"), CASES)
def test_preset_stop_on_the_entry_becomes_a_position_stop_that_closes_it(
    sim: Any, client: BitgetClient, pos_mode: str, side: str
) -> None:
    stop_price = away(side, "2")
    open_position(client, pos_mode, side, preset_stop_loss_price=stop_price)
    (stop,) = stops(client)
    assert stop.plan_type == "pos_loss" and stop.trigger_price == stop_price and stop.pos_side == side

    sim.engine.set_price(SYMBOL, away(side, "1"))  # not there yet
    assert len(client.position(SYMBOL)) == 1
    sim.engine.set_price(SYMBOL, away(side, "2.1"))
    assert client.position(SYMBOL) == []
    assert stops(client) == []


@pytest.mark.parametrize(("pos_mode", "side"), CASES)
def test_pos_loss_and_partial_profit_plan_close_the_position_in_steps(
    sim: Any, client: BitgetClient, pos_mode: str, side: str
) -> None:
    open_position(client, pos_mode, side)
    hold_side = tpsl_hold_side(side, pos_mode)  # type: ignore[arg-type]
    client.place_tpsl_order(
        TpslRequest(symbol=SYMBOL, plan_type="pos_loss", trigger_price=away(side, "2"),
                    hold_side=hold_side, client_oid="sl")  # type: ignore[arg-type]
    )  # fmt: skip
    client.place_tpsl_order(
        TpslRequest(symbol=SYMBOL, plan_type="profit_plan", trigger_price=toward(side, "1"), size=Decimal("0.004"),
                    hold_side=hold_side, client_oid="tp1")  # type: ignore[arg-type]
    )  # fmt: skip
    assert {(s.client_oid, s.plan_type) for s in stops(client)} == {("sl", "pos_loss"), ("tp1", "profit_plan")}

    sim.engine.set_price(SYMBOL, toward(side, "1.1"))
    (position,) = client.position(SYMBOL)
    assert position.total == Decimal("0.006")  # the take-profit closed its part
    assert [s.client_oid for s in stops(client)] == ["sl"]

    sim.engine.set_price(SYMBOL, away(side, "2.5"))
    assert client.position(SYMBOL) == []  # the whole-position stop closed the rest


@pytest.mark.parametrize(("pos_mode", "side"), CASES)
def test_reduce_only_plan_order_works_as_a_stop(sim: Any, client: BitgetClient, pos_mode: str, side: str) -> None:
    open_position(client, pos_mode, side)
    order_side, trade_side, reduce_only = order_fields(side, pos_mode, closing=True)  # type: ignore[arg-type]
    client.place_plan_order(
        PlanOrderRequest(
            symbol=SYMBOL, side=order_side, size=SIZE, trigger_price=away(side, "2"), trade_side=trade_side,
            reduce_only=reduce_only, client_oid="plan-stop", margin_mode="crossed",
        )
    )  # fmt: skip
    (plan,) = client.plan_orders_pending("normal_plan", SYMBOL)
    assert plan.client_oid == "plan-stop" and plan.trigger_price == away(side, "2")
    assert stops(client) == []  # a normal plan is not listed among the TP/SL orders

    sim.engine.set_price(SYMBOL, away(side, "3"))
    assert client.position(SYMBOL) == []
    assert client.plan_orders_pending("normal_plan", SYMBOL) == []


@pytest.mark.parametrize(("pos_mode", "side"), CASES)
def test_mark_price_stop_fires_on_the_mark_and_fill_price_stop_on_the_last_trade(
    sim: Any, client: BitgetClient, pos_mode: str, side: str
) -> None:
    open_position(client, pos_mode, side)
    hold_side = tpsl_hold_side(side, pos_mode)  # type: ignore[arg-type]
    client.place_tpsl_order(
        TpslRequest(symbol=SYMBOL, plan_type="loss_plan", trigger_price=away(side, "2"), size=Decimal("0.004"),
                    trigger_type="mark_price", hold_side=hold_side, client_oid="on-mark")  # type: ignore[arg-type]
    )  # fmt: skip
    client.place_tpsl_order(
        TpslRequest(symbol=SYMBOL, plan_type="loss_plan", trigger_price=away(side, "2"), size=Decimal("0.006"),
                    trigger_type="fill_price", hold_side=hold_side, client_oid="on-fill")  # type: ignore[arg-type]
    )  # fmt: skip

    sim.engine.set_mark_price(SYMBOL, away(side, "2.2"))  # the mark moves, the last trade does not
    (position,) = client.position(SYMBOL)
    assert position.total == Decimal("0.006")
    assert [s.client_oid for s in stops(client)] == ["on-fill"]

    sim.engine.set_price(SYMBOL, away(side, "2.2"))  # now the last trade reaches it too
    assert client.position(SYMBOL) == []


@pytest.mark.parametrize(("pos_mode", "side"), CASES)
def test_moved_stop_fires_at_the_new_level_only(sim: Any, client: BitgetClient, pos_mode: str, side: str) -> None:
    open_position(client, pos_mode, side, preset_stop_loss_price=away(side, "3"))
    (stop,) = stops(client)
    client.modify_tpsl_order(SYMBOL, order_id=stop.order_id, trigger_price=away(side, "1"))
    (moved,) = stops(client)
    assert moved.order_id == stop.order_id and moved.trigger_price == away(side, "1")

    with pytest.raises(InvalidTriggerPrice):  # a stop beyond the current price would fire at once
        client.modify_tpsl_order(SYMBOL, order_id=stop.order_id, trigger_price=toward(side, "1"))

    sim.engine.set_price(SYMBOL, away(side, "1.5"))
    assert client.position(SYMBOL) == []


@pytest.mark.parametrize(("pos_mode", "side"), CASES)
def test_cancelled_stop_no_longer_fires(sim: Any, client: BitgetClient, pos_mode: str, side: str) -> None:
    open_position(client, pos_mode, side)
    hold_side = tpsl_hold_side(side, pos_mode)  # type: ignore[arg-type]
    placed = client.place_tpsl_order(
        TpslRequest(symbol=SYMBOL, plan_type="pos_loss", trigger_price=away(side, "2"),
                    hold_side=hold_side, client_oid="sl-gone")  # type: ignore[arg-type]
    )  # fmt: skip
    cancelled = client.cancel_plan_order(SYMBOL, plan_type="pos_loss", order_id=placed.order_id)
    assert cancelled.order_id == placed.order_id
    assert stops(client) == []
    with pytest.raises(OrderNotFound):  # cancelling twice is refused, not silently accepted
        client.cancel_plan_order(SYMBOL, plan_type="pos_loss", order_id=placed.order_id)

    sim.engine.set_price(SYMBOL, away(side, "3"))
    assert len(client.position(SYMBOL)) == 1


def test_pending_listing_separates_plan_kinds_and_filters_by_symbol(sim: Any, client: BitgetClient) -> None:
    open_position(client, "one_way_mode", "long", preset_stop_loss_price=away("long", "2"))
    client.place_plan_order(
        PlanOrderRequest(symbol=SYMBOL, side="buy", size=SIZE, trigger_price=toward("long", "1"),
                         client_oid="breakout", margin_mode="crossed")
    )  # fmt: skip
    assert [p.plan_type for p in client.plan_orders_pending("profit_loss")] == ["pos_loss"]
    assert [p.client_oid for p in client.plan_orders_pending("normal_plan")] == ["breakout"]
    assert client.plan_orders_pending("profit_loss", "ETHUSDT") == []
    assert client.plan_orders_pending("track_plan", SYMBOL) == []


@pytest.mark.parametrize(("pos_mode", "wrong_hold_side"), [("one_way_mode", "long"), ("hedge_mode", "buy")])
def test_hold_side_of_the_other_position_mode_is_refused(
    client: BitgetClient, pos_mode: str, wrong_hold_side: str
) -> None:
    open_position(client, pos_mode, "long")
    with pytest.raises(InvalidParameter):
        client.place_tpsl_order(
            TpslRequest(symbol=SYMBOL, plan_type="pos_loss", trigger_price=away("long", "2"),
                        hold_side=wrong_hold_side)  # type: ignore[arg-type]
        )  # fmt: skip
    assert stops(client) == []


def test_cancel_without_the_stops_plan_type_leaves_the_stop_in_place(sim: Any, client: BitgetClient) -> None:
    # Bitget's cancel-plan-order defaults planType to normal_plan: a TP/SL is only found under its own type.
    open_position(client, "one_way_mode", "long", preset_stop_loss_price=away("long", "2"))
    (stop,) = stops(client)
    with pytest.raises(OrderNotFound):
        client.cancel_plan_order(SYMBOL, plan_type="normal_plan", order_id=stop.order_id)
    assert [s.order_id for s in stops(client)] == [stop.order_id]
    sim.engine.set_price(SYMBOL, away("long", "3"))
    assert client.position(SYMBOL) == []  # it still protects the position
