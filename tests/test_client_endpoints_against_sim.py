"""Every endpoint the client offers, called over loopback against the simulator (the ones other tests do not
already drive): server time and clock offset, symbol price, accounts, leverage and margin mode, cancel and
pending orders, position TP/SL, plan-order lookup, and the demo-trading header."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import AuthError, OrderNotFound, PositionModeError
from exchange.bitget.models import OrderRequest, TpslRequest
from exchange.bitget.ratelimit import RateLimiter
from exchange.sim.engine import SimExchange
from exchange.sim.testing import running_sim

SYMBOL = "BTCUSDT"


def client_for(sim: Any, **options: Any) -> BitgetClient:
    return sim.client(timeout=3.0, rate_limiter=RateLimiter(sleep=lambda s: None), sleep=lambda s: None, **options)


@pytest.fixture
def sim() -> Iterator[Any]:
    with running_sim(seed=61) as running:
        running.engine.set_price(SYMBOL, 65000)
        yield running


@pytest.fixture
def client(sim: Any) -> BitgetClient:
    client = client_for(sim)
    client.contracts()
    return client


def limit_buy(client_oid: str, price: str = "60000") -> OrderRequest:
    return OrderRequest(
        symbol=SYMBOL, side="buy", size=Decimal("0.010"), order_type="limit", price=Decimal(price),
        client_oid=client_oid, margin_mode="crossed",
    )  # fmt: skip


def test_server_time_and_a_clock_offset_learned_from_it() -> None:
    ahead_ms = 60_000  # the exchange clock is a minute ahead: outside the 30 s signature window
    engine = SimExchange(seed=62, clock_ms=lambda: int(time.time() * 1000) + ahead_ms)
    with running_sim(engine=engine) as sim:
        client = client_for(sim)
        assert abs(client.server_time() - engine.now_ms()) < 2000
        assert client.positions() == []  # refused as expired once, re-synced, retried
        assert abs(client.time_offset_ms - ahead_ms) < 2000
        assert client.account(SYMBOL).available == Decimal("10000")


def test_symbol_price_and_accounts(sim: Any, client: BitgetClient) -> None:
    sim.engine.set_price(SYMBOL, 64000, mark=Decimal("64010"))
    price = client.symbol_price(SYMBOL)
    assert (price.price, price.mark) == (Decimal("64000"), Decimal("64010"))
    assert client.account().equity == Decimal("10000")  # accounts (all margin coins): the USDT row


def test_leverage_and_margin_mode(sim: Any, client: BitgetClient) -> None:
    client.set_leverage(SYMBOL, 7)
    assert sim.engine.settings(SYMBOL).long_leverage == 7 == sim.engine.settings(SYMBOL).short_leverage
    client.set_position_mode("hedge_mode")
    client.set_margin_mode(SYMBOL, "isolated")
    assert sim.engine.settings(SYMBOL).margin_mode == "isolated"
    client.set_leverage(SYMBOL, 3, "short")  # per side: isolated margin in hedge mode only
    assert (sim.engine.settings(SYMBOL).long_leverage, sim.engine.settings(SYMBOL).short_leverage) == (7, 3)
    client.place_order(
        OrderRequest(symbol=SYMBOL, side="buy", size=Decimal("0.010"), order_type="limit", price=Decimal("60000"),
                     trade_side="open", client_oid="rests", margin_mode="isolated")
    )  # fmt: skip
    with pytest.raises(PositionModeError):  # not while an order or position exists
        client.set_margin_mode(SYMBOL, "crossed")


def test_pending_orders_then_cancel_by_client_id(client: BitgetClient) -> None:
    first = client.place_order(limit_buy("rest-1", "60000"))
    client.place_order(limit_buy("rest-2", "59000"))
    assert {o.client_oid for o in client.pending_orders(SYMBOL)} == {"rest-1", "rest-2"}
    assert client.pending_orders("ETHUSDT") == []
    client.cancel_order(SYMBOL, client_oid="rest-2")
    client.cancel_order(SYMBOL, order_id=first.order_id)
    assert client.pending_orders() == []
    assert client.order_detail(SYMBOL, client_oid="rest-2").state == "canceled"
    with pytest.raises(OrderNotFound):
        client.cancel_order(SYMBOL, client_oid="never-placed")


def test_position_tpsl_in_one_call_and_lookup_of_a_plan_by_client_id(sim: Any, client: BitgetClient) -> None:
    client.place_order(
        OrderRequest(symbol=SYMBOL, side="buy", size=Decimal("0.010"), order_type="market", margin_mode="crossed")
    )
    placed = client.place_pos_tpsl(SYMBOL, "buy", take_profit_price=Decimal("70000"), stop_loss_price=Decimal("60000"))
    assert len(placed) == 2
    kinds = {(p.plan_type, p.trigger_price) for p in client.plan_orders_pending("profit_loss", SYMBOL)}
    assert kinds == {("pos_profit", Decimal("70000")), ("pos_loss", Decimal("60000"))}

    client.place_tpsl_order(
        TpslRequest(symbol=SYMBOL, plan_type="profit_plan", trigger_price=Decimal("68000"), size=Decimal("0.005"),
                    hold_side="buy", client_oid="tp-half")
    )  # fmt: skip
    found = client.resolve_unknown_plan(SYMBOL, "tp-half")
    assert found is not None and found.trigger_price == Decimal("68000")
    assert client.resolve_unknown_plan(SYMBOL, "never-sent") is None

    sim.engine.set_price(SYMBOL, 59990)
    assert client.position(SYMBOL) == [] and client.plan_orders_pending("profit_loss", SYMBOL) == []


def test_demo_trading_sends_the_paptrading_header_a_demo_environment_requires() -> None:
    with running_sim(seed=63, demo=True) as sim:
        with pytest.raises(AuthError) as info:
            client_for(sim).positions()
        assert info.value.code == "40099"
        demo_client = client_for(sim, demo=True)
        assert demo_client.positions() == []
        assert demo_client.server_time() > 0


def test_fill_history_pages_back_with_bitget_fields(sim: Any, client: BitgetClient) -> None:
    for _ in range(130):  # more than one page of 100
        sim.engine.place_order(SYMBOL, side="buy", size=Decimal("0.001"), order_type="market")
    fills = client.fills(SYMBOL)
    assert len(fills) == 130 and len({f.trade_id for f in fills}) == 130
    newest = fills[0]
    assert newest.side == "buy" and newest.trade_side == "open" and newest.fee < 0 and newest.pos_mode
    assert newest.trade_scope == "taker" and newest.profit == 0 and newest.size == Decimal("0.001")
    one = client.fills(SYMBOL, order_id=newest.order_id)
    assert [f.trade_id for f in one] == [newest.trade_id]
