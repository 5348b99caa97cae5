"""Order life cycles on the simulator, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exchange.bitget.contracts import Contract
from exchange.sim.engine import SimExchange
from exchange.sim.testing import RunningSim, running_sim

PT = {"productType": "USDT-FUTURES"}


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=3, rate_limits=False) as running:
        yield running


def ok(reply: Any) -> Any:
    body = reply.json()
    assert reply.status_code == 200 and body["code"] == "00000", body
    return body["data"]


def refused(reply: Any) -> str:
    body = reply.json()
    assert reply.status_code == 400 and body["data"] is None, body
    return body["code"]


def positions(sim: RunningSim) -> list[dict[str, Any]]:
    return ok(sim.get("/api/v2/mix/position/all-position", {**PT, "marginCoin": "USDT"}))


def tpsl_plans(sim: RunningSim) -> list[dict[str, Any]]:
    return (
        ok(sim.get("/api/v2/mix/order/orders-plan-pending", {**PT, "planType": "profit_loss"}))["entrustedList"] or []
    )


def test_market_order_with_preset_stop_opens_position_guarded_by_a_stop_plan(sim: RunningSim) -> None:
    sim.engine.set_price("BTCUSDT", "65000")
    placed = ok(
        sim.place_order(symbol="BTCUSDT", side="buy", size="0.010", presetStopLossPrice="64000", clientOid="entry-1")
    )
    assert placed["clientOid"] == "entry-1"
    (position,) = positions(sim)
    assert (position["holdSide"], position["total"], position["openPriceAvg"]) == ("long", "0.01", "65000")
    assert position["stopLoss"] == "64000"
    (stop,) = tpsl_plans(sim)
    assert (stop["planType"], stop["triggerPrice"], stop["size"], stop["posSide"]) == (
        "pos_loss",
        "64000",
        "0.01",
        "long",
    )


def test_stop_triggers_when_price_crosses_and_closes_the_position(sim: RunningSim) -> None:
    sim.engine.set_price("BTCUSDT", "65000")
    ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.010", presetStopLossPrice="64000"))
    sim.engine.set_price("BTCUSDT", "64500")
    assert len(positions(sim)) == 1
    sim.engine.set_price("BTCUSDT", "63900")  # gaps through the stop: fills at the gapped price
    assert positions(sim) == []
    assert tpsl_plans(sim) == []
    fills = ok(sim.get("/api/v2/mix/order/fills", {**PT, "symbol": "BTCUSDT"}))["fillList"]
    close = fills[0]
    assert (close["tradeSide"], close["side"], close["price"], close["profit"]) == ("close", "sell", "63900", "-11")
    fees = Decimal("0.0006") * (Decimal("650") + Decimal("639"))
    assert sim.engine.account().equity == Decimal("10000") - 11 - fees


def test_limit_order_rests_then_fills_as_maker_when_crossed(sim: RunningSim) -> None:
    sim.engine.set_price("ETHUSDT", "3200")
    placed = ok(
        sim.place_order(symbol="ETHUSDT", side="buy", size="0.5", orderType="limit", price="3150.5", force="GTC")
    )
    detail = ok(sim.get("/api/v2/mix/order/detail", {**PT, "symbol": "ETHUSDT", "orderId": placed["orderId"]}))
    assert (detail["state"], detail["baseVolume"], detail["priceAvg"]) == ("live", "0", "")
    pending = ok(sim.get("/api/v2/mix/order/orders-pending", {**PT, "symbol": "ETHUSDT"}))["entrustedList"]
    assert [p["orderId"] for p in pending] == [placed["orderId"]] and pending[0]["status"] == "live"
    sim.engine.set_price("ETHUSDT", "3160")
    assert positions(sim) == []
    sim.engine.set_price("ETHUSDT", "3149")
    detail = ok(sim.get("/api/v2/mix/order/detail", {**PT, "symbol": "ETHUSDT", "orderId": placed["orderId"]}))
    assert (detail["state"], detail["baseVolume"], detail["priceAvg"]) == ("filled", "0.5", "3150.5")
    assert sim.engine.fills("ETHUSDT")[0].scope == "maker"
    assert ok(sim.get("/api/v2/mix/order/orders-pending", PT))["entrustedList"] is None


def test_cancel_by_client_oid_and_cancel_of_finished_order(sim: RunningSim) -> None:
    ok(sim.place_order(symbol="ETHUSDT", side="buy", size="0.5", orderType="limit", price="3000", clientOid="c-1"))
    body = {**PT, "symbol": "ETHUSDT", "marginCoin": "USDT", "clientOid": "c-1"}
    assert ok(sim.post("/api/v2/mix/order/cancel-order", body))["clientOid"] == "c-1"
    assert refused(sim.post("/api/v2/mix/order/cancel-order", body)) == "22001"
    assert refused(sim.post("/api/v2/mix/order/cancel-order", {**body, "clientOid": "never"})) == "40768"


def test_partial_fills_complete_on_later_price_steps() -> None:
    engine = SimExchange(seed=5, partial_fill_ratio="0.5")
    with running_sim(engine=engine, rate_limits=False) as sim:
        placed = ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.008"))
        query = {**PT, "symbol": "BTCUSDT", "orderId": placed["orderId"]}
        first = ok(sim.get("/api/v2/mix/order/detail", query))
        assert (first["state"], first["baseVolume"]) == ("partially_filled", "0.004")
        engine.step()
        assert ok(sim.get("/api/v2/mix/order/detail", query))["baseVolume"] == "0.006"
        engine.step(3)
        done = ok(sim.get("/api/v2/mix/order/detail", query))
        assert (done["state"], done["baseVolume"]) == ("filled", "0.008")
        assert positions(sim)[0]["total"] == "0.008"


def test_reduce_only_may_not_exceed_or_create_a_position(sim: RunningSim) -> None:
    assert refused(sim.place_order(symbol="BTCUSDT", side="sell", size="0.01", reduceOnly="YES")) == "22002"
    ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.01"))
    assert refused(sim.place_order(symbol="BTCUSDT", side="sell", size="0.02", reduceOnly="YES")) == "40757"
    ok(sim.place_order(symbol="BTCUSDT", side="sell", size="0.004", reduceOnly="YES"))
    assert positions(sim)[0]["total"] == "0.006"


def test_one_way_sell_reduces_a_long_before_opening_a_short(sim: RunningSim) -> None:
    ok(sim.place_order(symbol="SOLUSDT", side="buy", size="1.0"))
    ok(sim.place_order(symbol="SOLUSDT", side="sell", size="1.0", reduceOnly="YES"))
    assert positions(sim) == []
    ok(sim.place_order(symbol="SOLUSDT", side="buy", size="1.0"))
    ok(sim.place_order(symbol="SOLUSDT", side="sell", size="1.5"))  # flips: closes 1.0, opens 0.5 short
    (position,) = positions(sim)
    assert (position["holdSide"], position["total"]) == ("short", "0.5")


def test_hedge_mode_close_long_is_side_buy_with_trade_side_close(sim: RunningSim) -> None:
    ok(sim.post("/api/v2/mix/account/set-position-mode", {**PT, "posMode": "hedge_mode"}))
    assert refused(sim.place_order(symbol="BTCUSDT", side="buy", size="0.01")) == "40774"
    ok(sim.place_order(symbol="BTCUSDT", side="buy", tradeSide="Open", size="0.01"))
    ok(sim.place_order(symbol="BTCUSDT", side="sell", tradeSide="open", size="0.02"))
    assert {(p["holdSide"], p["total"], p["posMode"]) for p in positions(sim)} == {
        ("long", "0.01", "hedge_mode"),
        ("short", "0.02", "hedge_mode"),
    }
    assert refused(sim.place_order(symbol="BTCUSDT", side="buy", tradeSide="close", size="0.02")) == "40757"
    ok(sim.place_order(symbol="BTCUSDT", side="buy", tradeSide="Close", size="0.01"))  # closes the LONG
    assert [(p["holdSide"], p["total"]) for p in positions(sim)] == [("short", "0.02")]
    # Switching mode back is refused while a position exists.
    assert refused(sim.post("/api/v2/mix/account/set-position-mode", {**PT, "posMode": "one_way_mode"})) == "40920"


def test_duplicate_client_oid_is_rejected_and_lookup_by_client_oid_works(sim: RunningSim) -> None:
    placed = ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.001", clientOid="sig-42-entry"))
    assert refused(sim.place_order(symbol="BTCUSDT", side="buy", size="0.001", clientOid="sig-42-entry")) == "40786"
    detail = ok(sim.get("/api/v2/mix/order/detail", {**PT, "symbol": "BTCUSDT", "clientOid": "sig-42-entry"}))
    assert detail["orderId"] == placed["orderId"] and detail["size"] == "0.001"
    assert len(sim.engine.orders()) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"size": "0.0015"}, "40808"),  # BTC volumePlace 3
        ({"size": "0.0001"}, "40808"),
        ({"orderType": "limit", "price": "65000.05"}, "40808"),  # BTC pricePlace 1
        ({"size": "0.0"}, "40020"),
        ({"size": "abc"}, "40020"),
        ({"symbol": "NOPEUSDT"}, "40034"),
        ({"side": "up"}, "40020"),
        ({"orderType": "limit"}, "40019"),  # limit without a price
    ],
)
def test_precision_and_parameter_errors(sim: RunningSim, fields: dict[str, str], code: str) -> None:
    order = {"symbol": "BTCUSDT", "side": "buy", "size": "0.001", **fields}
    assert refused(sim.place_order(**order)) == code
    assert sim.engine.orders() == []


def test_minimum_size_and_notional_and_tick_multiple() -> None:
    odd_tick = Contract(
        "TICKUSDT",
        "TICK",
        "USDT",
        price_place=1,
        price_end_step=5,
        volume_place=1,
        size_multiplier=Decimal("0.1"),
        min_trade_num=Decimal("0.5"),
        min_trade_usdt=Decimal("6"),
        max_lever=50,
    )
    engine = SimExchange(seed=1, contracts=[odd_tick], prices={"TICKUSDT": Decimal("10")})
    with running_sim(engine=engine, rate_limits=False) as sim:
        assert refused(sim.place_order(symbol="TICKUSDT", side="buy", size="0.4")) == "45111"
        assert refused(sim.place_order(symbol="TICKUSDT", side="buy", size="0.5")) == "45110"  # notional 5 < 6
        assert (
            refused(sim.place_order(symbol="TICKUSDT", side="buy", size="1", orderType="limit", price="9.7")) == "45115"
        )
        ok(sim.place_order(symbol="TICKUSDT", side="buy", size="1", orderType="limit", price="9.5"))


def test_order_beyond_available_balance_is_refused(sim: RunningSim) -> None:
    # 10 000 USDT at 20x buys at most ~3 BTC of notional 195 000; 4 BTC needs 13 000 of margin.
    assert refused(sim.place_order(symbol="BTCUSDT", side="buy", size="4")) == "40762"
    assert sim.engine.positions() == []


def test_preset_on_wrong_side_is_refused(sim: RunningSim) -> None:
    code = refused(sim.place_order(symbol="BTCUSDT", side="buy", size="0.001", presetStopLossPrice="66000"))
    assert code == "40915"


def test_tpsl_order_on_position_and_modify_and_cancel(sim: RunningSim) -> None:
    ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.01"))
    base = {**PT, "symbol": "BTCUSDT", "marginCoin": "USDT"}
    # One-way mode names the position by buy/sell; long/short is a hedge-mode value.
    wrong = {**base, "planType": "profit_plan", "triggerPrice": "70000", "holdSide": "long", "size": "0.005"}
    assert refused(sim.post("/api/v2/mix/order/place-tpsl-order", wrong)) == "40020"
    tp = ok(sim.post("/api/v2/mix/order/place-tpsl-order", {**wrong, "holdSide": "buy", "clientOid": "tp-1"}))
    modified = {**base, "clientOid": "tp-1", "triggerPrice": "68000", "size": "0.005"}
    ok(sim.post("/api/v2/mix/order/modify-tpsl-order", modified))
    (plan,) = tpsl_plans(sim)
    assert (plan["orderId"], plan["triggerPrice"], plan["planType"]) == (tp["orderId"], "68000", "profit_plan")
    sim.engine.set_price("BTCUSDT", "68000")
    assert positions(sim)[0]["total"] == "0.005"
    sl = ok(sim.post("/api/v2/mix/order/place-pos-tpsl", {**base, "holdSide": "buy", "stopLossTriggerPrice": "60000"}))
    assert sl[0]["stopLossClientOid"]
    canceled = ok(sim.post("/api/v2/mix/order/cancel-plan-order", {**base, "planType": "pos_loss"}))
    assert [c["orderId"] for c in canceled["successList"]] == [sl[0]["orderId"]]
    assert tpsl_plans(sim) == []


def test_trigger_plan_order_opens_when_price_reaches_trigger(sim: RunningSim) -> None:
    body = {
        **PT,
        "symbol": "BTCUSDT",
        "marginCoin": "USDT",
        "marginMode": "crossed",
        "planType": "normal_plan",
        "side": "buy",
        "orderType": "market",
        "size": "0.002",
        "triggerPrice": 66000,
        "triggerType": "mark_price",
    }
    ok(sim.post("/api/v2/mix/order/place-plan-order", body))
    pending = ok(sim.get("/api/v2/mix/order/orders-plan-pending", {**PT, "planType": "normal_plan"}))
    assert pending["entrustedList"][0]["triggerPrice"] == "66000"
    sim.engine.set_price("BTCUSDT", "65900")
    assert positions(sim) == []
    sim.engine.set_price("BTCUSDT", "66010")
    assert positions(sim)[0]["total"] == "0.002"


def test_flash_close_closes_every_position(sim: RunningSim) -> None:
    ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.01"))
    ok(sim.place_order(symbol="ETHUSDT", side="sell", size="0.1"))
    closed = ok(sim.post("/api/v2/mix/order/close-positions", PT))
    assert {c["symbol"] for c in closed["successList"]} == {"BTCUSDT", "ETHUSDT"}
    assert positions(sim) == []
    assert refused(sim.post("/api/v2/mix/order/close-positions", PT)) == "22002"


def test_leverage_and_margin_mode_settings(sim: RunningSim) -> None:
    base = {**PT, "symbol": "BTCUSDT", "marginCoin": "USDT"}
    assert ok(sim.post("/api/v2/mix/account/set-leverage", {**base, "leverage": "10"}))["longLeverage"] == "10"
    assert refused(sim.post("/api/v2/mix/account/set-leverage", {**base, "leverage": "200"})) == "40797"
    assert (
        ok(sim.post("/api/v2/mix/account/set-margin-mode", {**base, "marginMode": "isolated"}))["marginMode"]
        == "isolated"
    )
    ok(sim.place_order(symbol="BTCUSDT", side="buy", size="0.01", marginMode="isolated"))
    (position,) = positions(sim)
    assert (position["leverage"], position["marginMode"], position["marginSize"]) == ("10", "isolated", "65")
    assert Decimal(position["liquidationPrice"]) < Decimal("65000")
    assert refused(sim.post("/api/v2/mix/account/set-margin-mode", {**base, "marginMode": "crossed"})) == "45117"
