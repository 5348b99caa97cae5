"""ccxt's ``bitget`` client, pointed at the simulator, can do what a USDT-M futures user does.

An independent implementation of the Bitget V2 protocol is the best check that the simulator speaks it:
real paths, signing, envelopes, string numbers and codes. ccxt's own throttle is off to keep the tests fast; the
simulator's per-endpoint limits still apply and no request here comes near them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

ccxt = pytest.importorskip("ccxt")
sim_testing = pytest.importorskip("exchange.sim.testing")

SYMBOL = "BTC/USDT:USDT"
PRODUCT_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES", "SCOIN-FUTURES", "SUSDC-FUTURES")


def ccxt_bitget(sim: Any, **options: Any) -> Any:
    exchange = ccxt.bitget(
        {
            "apiKey": sim.credentials.api_key,
            "secret": sim.credentials.api_secret,
            "password": sim.credentials.passphrase,
            "enableRateLimit": False,
            "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}, **options},
        }
    )
    exchange.urls["api"] = {name: sim.base_url for name in exchange.urls["api"]}
    return exchange


@pytest.fixture
def sim() -> Iterator[Any]:
    with sim_testing.running_sim(seed=11) as running:
        running.engine.set_price("BTCUSDT", 65000)
        yield running


@pytest.fixture
def exchange(sim: Any) -> Any:
    exchange = ccxt_bitget(sim)
    exchange.load_markets()
    return exchange


def failed_requests(sim: Any) -> list[Any]:
    # ccxt probes the unified-account (V3) API once; a classic account refuses it with 40084, by design.
    return [r for r in sim.engine.request_log if r.status != 200 and r.code != "40084"]


def test_load_markets_reads_the_usdt_m_contracts_with_their_precision(sim: Any, exchange: Any) -> None:
    market = exchange.market(SYMBOL)
    assert market["swap"] and market["linear"] and market["settle"] == "USDT"
    assert market["precision"] == {"amount": 0.001, "price": 0.1}
    assert market["limits"]["amount"]["min"] == 0.001
    assert market["limits"]["cost"]["min"] == 5.0
    assert {m["settle"] for m in exchange.markets.values()} == {"USDT"}  # other product types are empty
    contract_calls = sim.engine.requests_to("contracts")
    assert {r.params["productType"] for r in contract_calls} == set(PRODUCT_TYPES)
    assert failed_requests(sim) == []


def test_ticker_balance_and_server_time(sim: Any, exchange: Any) -> None:
    ticker = exchange.fetch_ticker(SYMBOL)
    assert ticker["last"] == 65000.0 and ticker["bid"] < ticker["last"] < ticker["ask"]
    assert ticker["markPrice"] == 65000.0
    balance = exchange.fetch_balance()
    assert balance["USDT"]["total"] == 10000.0 and balance["USDT"]["free"] == 10000.0
    assert abs(exchange.fetch_time() - sim.engine.now_ms()) < 5000
    book = exchange.fetch_order_book(SYMBOL, 5)
    assert book["bids"][0][0] == ticker["bid"] and book["asks"][0][0] == ticker["ask"]
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert exchange.fetch_funding_rate(SYMBOL)["fundingRate"] == 0.0001
    assert failed_requests(sim) == []


def test_market_entry_with_attached_stop_opens_a_protected_position(sim: Any, exchange: Any) -> None:
    assert exchange.fetch_positions([SYMBOL]) == []
    exchange.set_leverage(5, SYMBOL)
    assert sim.engine.settings("BTCUSDT").long_leverage == 5

    entry = exchange.create_order(SYMBOL, "market", "buy", 0.01, None, {"stopLoss": {"triggerPrice": 60000}})
    fetched = exchange.fetch_order(entry["id"], SYMBOL)
    assert fetched["status"] == "closed" and fetched["filled"] == 0.01 and fetched["average"] == 65000.0
    assert fetched["stopLossPrice"] == 60000.0

    (position,) = exchange.fetch_positions([SYMBOL])
    assert position["side"] == "long" and position["contracts"] == 0.01
    assert position["entryPrice"] == 65000.0 and position["leverage"] == 5.0

    stops = exchange.fetch_open_orders(SYMBOL, params={"trigger": True, "planType": "profit_loss"})
    assert [(s["triggerPrice"], s["side"]) for s in stops] == [(60000.0, "sell")]
    (plan,) = sim.engine.plan_orders("BTCUSDT")
    assert plan.plan_type == "pos_loss" and plan.trigger_price == Decimal("60000")

    sim.engine.set_price("BTCUSDT", 59990)  # the exchange-side stop fires without the client
    assert exchange.fetch_positions([SYMBOL]) == []
    assert failed_requests(sim) == []


def test_limit_order_is_listed_then_cancelled(sim: Any, exchange: Any) -> None:
    order = exchange.create_order(SYMBOL, "limit", "buy", 0.01, 60000, {"clientOrderId": "ccxt-limit-1"})
    (listed,) = exchange.fetch_open_orders(SYMBOL)
    assert listed["id"] == order["id"] and listed["clientOrderId"] == "ccxt-limit-1"
    assert listed["price"] == 60000.0 and listed["amount"] == 0.01 and listed["status"] == "open"

    exchange.cancel_order(order["id"], SYMBOL)
    assert exchange.fetch_open_orders(SYMBOL) == []
    assert exchange.fetch_order(order["id"], SYMBOL)["status"] == "canceled"
    assert exchange.fetch_positions([SYMBOL]) == []
    assert failed_requests(sim) == []


def test_short_in_hedge_mode_and_a_reduce_only_close(sim: Any, exchange: Any) -> None:
    exchange.set_position_mode(True, SYMBOL)
    assert sim.engine.pos_mode == "hedge_mode"
    exchange.create_order(SYMBOL, "market", "sell", 0.02, None, {"hedged": True, "stopLoss": {"triggerPrice": 70000}})
    (short,) = exchange.fetch_positions([SYMBOL])
    assert short["side"] == "short" and short["contracts"] == 0.02 and short["hedged"] is True

    exchange.create_order(SYMBOL, "market", "buy", 0.02, None, {"hedged": True, "reduceOnly": True})
    assert exchange.fetch_positions([SYMBOL]) == []
    assert failed_requests(sim) == []


def test_every_product_type_is_answered() -> None:
    # 36 calls in a burst: the per-endpoint limits are off here (they are not what this test is about).
    with sim_testing.running_sim(seed=13, rate_limits=False) as unlimited_sim:
        exchange = ccxt_bitget(unlimited_sim)
        for product_type in PRODUCT_TYPES:
            assert_product_type_answered(exchange, product_type)
        assert failed_requests(unlimited_sim) == []


def assert_product_type_answered(exchange: Any, product_type: str) -> None:
    simulated = product_type == "USDT-FUTURES"
    contracts = exchange.publicMixGetV2MixMarketContracts({"productType": product_type})["data"]
    assert (len(contracts) > 0) is simulated
    positions = exchange.privateMixGetV2MixPositionAllPosition({"productType": product_type})["data"]
    assert positions == []
    accounts = exchange.privateMixGetV2MixAccountAccounts({"productType": product_type})["data"]
    assert (len(accounts) == 1) is simulated
    pending = exchange.privateMixGetV2MixOrderOrdersPending({"productType": product_type})["data"]
    assert not pending["entrustedList"]
    plans = exchange.privateMixGetV2MixOrderOrdersPlanPending(
        {"productType": product_type, "planType": "profit_loss"}
    )["data"]
    assert not plans["entrustedList"]
    fills = exchange.privateMixGetV2MixOrderFills({"productType": product_type})["data"]
    assert not fills["fillList"]


def test_demo_trading_header_is_required_by_a_demo_simulator() -> None:
    with sim_testing.running_sim(seed=12, demo=True) as demo_sim:
        live_client = ccxt_bitget(demo_sim)
        with pytest.raises(ccxt.ExchangeError, match="40099"):
            live_client.fetch_balance()
        demo_client = ccxt_bitget(demo_sim)
        demo_client.set_sandbox_mode(True)
        assert demo_client.fetch_balance()["USDT"]["total"] == 10000.0


def test_cancel_all_and_the_order_history(sim: Any, exchange: Any) -> None:
    filled = exchange.create_order(SYMBOL, "market", "buy", 0.01)
    resting = [exchange.create_order(SYMBOL, "limit", "buy", 0.01, price) for price in (60000, 59000)]
    exchange.cancel_all_orders(SYMBOL)
    assert exchange.fetch_open_orders(SYMBOL) == []
    closed = exchange.fetch_closed_orders(SYMBOL)
    assert [o["id"] for o in closed] == [filled["id"]] and closed[0]["status"] == "closed"
    canceled = exchange.fetch_canceled_orders(SYMBOL)
    assert sorted(o["id"] for o in canceled) == sorted(o["id"] for o in resting)
    assert {o["status"] for o in canceled} == {"canceled"}
    assert failed_requests(sim) == []


@pytest.mark.parametrize("hedged", [False, True])
def test_a_stop_placed_by_ccxt_as_a_position_tpsl_closes_the_position(sim: Any, exchange: Any, hedged: bool) -> None:
    if hedged:
        exchange.set_position_mode(True, SYMBOL)
    exchange.create_order(SYMBOL, "market", "buy", 0.01, None, {"hedged": hedged})
    # ccxt sends this to place-tpsl-order as pos_loss, holdSide long (hedged) or buy (one-way).
    exchange.create_order(SYMBOL, "market", "sell", 0.01, None,
                          {"stopLossPrice": 62000, "reduceOnly": True, "hedged": hedged})  # fmt: skip
    (plan,) = sim.engine.plan_orders("BTCUSDT")
    assert (plan.plan_type, plan.hold_side, plan.trigger_price) == ("pos_loss", "long", Decimal("62000"))
    sim.engine.set_mark_price("BTCUSDT", 61990)
    assert exchange.fetch_positions([SYMBOL]) == []
    assert failed_requests(sim) == []
