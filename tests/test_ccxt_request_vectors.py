"""Our request building agrees with ccxt's static request tests for the same intents.

ccxt's own choices are normalised: it sends uppercase ``GTC``/``Open``/``Close`` (Bitget is
case-insensitive there) and a few keys the endpoints do not need (``force``/``orderType``/``size`` on a
whole-position TP/SL). For POST bodies we compare on the keys Bitget documents for the endpoint; for GET we
compare path and query parameters (we may add ``limit`` for pagination).
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.models import OrderRequest, PlanOrderRequest, TpslRequest
from exchange.bitget.ratelimit import RateLimiter
from exchange.bitget.semantics import order_fields, tpsl_hold_side

LOCAL = Path(__file__).resolve().parent / "fixtures" / "bitget" / "ccxt_request_vectors.json"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ccxt-bitget-static-request.json"
BASE = "https://api.bitget.com"
VECTORS: dict[str, list[dict[str, Any]]] = json.loads(LOCAL.read_text())["methods"]
CASE_INSENSITIVE = {"force", "tradeSide"}
TPSL_KEYS = {"symbol", "marginCoin", "productType", "planType", "triggerPrice", "triggerType", "holdSide"}
OK = {"code": "00000", "msg": "success", "data": {"orderId": "1", "clientOid": "c"}}


def cases(method: str) -> list[Any]:
    return [pytest.param(case, id=case["description"]) for case in VECTORS[method]]


def make_client(**kwargs: Any) -> BitgetClient:
    return BitgetClient(
        BASE, Credentials("k", "s", "p"), rate_limiter=RateLimiter(sleep=lambda s: None),
        session=requests.Session(),  # the `responses` mocks intercept requests sessions
        **kwargs,
    )


def norm(body: dict[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if k in CASE_INSENSITIVE else str(v) for k, v in body.items()}


def symbol_of(market: str) -> str:
    return market.split(":")[0].replace("/", "")


def sent_body() -> dict[str, Any]:
    return json.loads(responses.calls[-1].request.body)


def order_request_from_ccxt(args: list[Any]) -> OrderRequest:
    market, order_type, side, amount, price, params = (args + [None] * 6)[:6]
    params = params or {}
    margin_mode = "crossed" if params.get("marginMode", "cross") == "cross" else params["marginMode"]
    trade_side = None
    reduce_only = bool(params.get("reduceOnly"))
    if params.get("hedged"):
        # ccxt's input side is the trade direction; a reducing buy closes a short position.
        if reduce_only:
            position_side = "short" if side == "buy" else "long"
            side, trade_side, _ = order_fields(position_side, "hedge_mode", closing=True)
            reduce_only = False
        else:
            position_side = "long" if side == "buy" else "short"
            side, trade_side, _ = order_fields(position_side, "hedge_mode", closing=False)
    return OrderRequest(
        symbol=symbol_of(market),
        side=side,
        size=Decimal(str(amount)),
        order_type=order_type,
        price=None if price is None else Decimal(str(price)),
        trade_side=trade_side,
        reduce_only=reduce_only,
        margin_mode=margin_mode,
        force="post_only" if params.get("postOnly") else "gtc",
    )


PLACE_ORDER_CASES = [
    c
    for c in VECTORS["createOrder"]
    if c["url"].endswith("/place-order") and "takeProfit" not in json.dumps(c)
]


@responses.activate
@pytest.mark.parametrize("case", [pytest.param(c, id=c["description"]) for c in PLACE_ORDER_CASES])
def test_place_order_body_matches_ccxt(case: dict[str, Any]) -> None:
    responses.post(case["url"], json=OK)
    make_client().place_order(order_request_from_ccxt(case["input"]))
    assert responses.calls[0].request.url == case["url"]
    assert norm(sent_body()) == norm(case["output"])


@responses.activate
@pytest.mark.parametrize("case", cases("createTakeProfitOrder") + cases("createStopLossOrder"))
def test_position_tpsl_body_matches_ccxt(case: dict[str, Any]) -> None:
    market, _type, side, _amount, _price, trigger, *rest = case["input"]
    mode = "hedge_mode" if rest and rest[0].get("hedged") else "one_way_mode"
    position_side = "long" if side == "sell" else "short"  # the protective order trades against the position
    plan_type = case["output"]["planType"]
    request = TpslRequest(
        symbol=symbol_of(market),
        plan_type=plan_type,
        trigger_price=Decimal(str(trigger)),
        hold_side=tpsl_hold_side(position_side, mode),  # type: ignore[arg-type]
    )
    responses.post(case["url"], json=OK)
    make_client().place_tpsl_order(request)
    expected = {k: v for k, v in case["output"].items() if k in TPSL_KEYS}
    assert norm({k: v for k, v in sent_body().items() if k in TPSL_KEYS}) == norm(expected)
    assert set(sent_body()) <= TPSL_KEYS | {"executePrice", "size", "clientOid"}


@responses.activate
def test_plan_orders_match_ccxt() -> None:
    by_desc = {c["description"]: c for c in VECTORS["createOrder"]}
    trigger_case = by_desc["Swap cross limit buy with trigger price"]
    responses.post(trigger_case["url"], json=OK)
    make_client().place_plan_order(
        PlanOrderRequest(
            symbol="BTCUSDT", side="buy", size=Decimal("0.001"), trigger_price=Decimal(26000),
            order_type="limit", price=Decimal(25000), margin_mode="crossed",
        )
    )  # fmt: skip
    ours = sent_body()
    documented = ("symbol", "orderType", "price", "marginCoin", "size", "productType", "triggerType")
    for key in (*documented, "marginMode", "side", "planType", "triggerPrice"):
        assert str(ours[key]) == str(trigger_case["output"][key]), key

    trailing = by_desc["Swap trailing order using trailingPercent and setting reduceOnly to true"]
    responses.post(trailing["url"], json=OK)
    make_client().place_plan_order(
        PlanOrderRequest(
            symbol="BTCUSDT", side="sell", size=Decimal("0.002"), trigger_price=Decimal(45000),
            reduce_only=True, plan_type="track_plan", callback_ratio=Decimal(10), margin_mode="crossed",
        )
    )  # fmt: skip
    expected = {k: v for k, v in trailing["output"].items() if k != "force"}
    assert norm(sent_body()) == norm(expected)


@responses.activate
def test_account_setting_bodies_match_ccxt() -> None:
    for case in VECTORS["setLeverage"] + VECTORS["setPositionMode"] + VECTORS["setMarginMode"]:
        responses.post(case["url"], json={"code": "00000", "data": {}})
    linear, inverse = VECTORS["setLeverage"]
    make_client().set_leverage("ADAUSDT", 15)
    assert sent_body() == linear["output"]
    make_client(product_type="COIN-FUTURES", margin_coin="BTC").set_leverage("BTCUSD", 20, hold_side="long")
    assert sent_body() == inverse["output"]
    make_client().set_position_mode("hedge_mode")
    assert sent_body() == VECTORS["setPositionMode"][0]["output"]
    make_client().set_margin_mode("LTCUSDT", "isolated")
    assert sent_body() == VECTORS["setMarginMode"][0]["output"]


@responses.activate
@pytest.mark.parametrize("case", cases("cancelOrder"))
def test_cancel_bodies_match_ccxt(case: dict[str, Any]) -> None:
    expected = case["output"]
    order_id, market, *rest = case["input"]  # ccxt: cancelOrder(id, symbol, params)
    params = rest[0] if rest else {}
    client_oid = params.get("clientOrderId")
    responses.post(case["url"], json={"code": "00000", "data": {"orderId": "1", "clientOid": "c"}})
    if case["url"].endswith("cancel-plan-order"):
        data = {"successList": [{"orderId": "1", "clientOid": "c"}], "failureList": []}
        responses.replace(responses.POST, case["url"], json={"code": "00000", "data": data})
        plan_type = "track_plan" if params.get("trailing") else "normal_plan"
        make_client().cancel_plan_order(
            symbol_of(market), plan_type=plan_type, order_id=order_id or None, client_oid=client_oid
        )
        expected = {"planType": "normal_plan", **expected}  # ccxt relies on the server default
    else:
        make_client().cancel_order(symbol_of(market), order_id=order_id or None, client_oid=client_oid)
    ours = sent_body()
    assert responses.calls[0].request.url == case["url"]
    assert {k: v for k, v in ours.items() if k != "marginCoin"} == expected


def _get_expectations() -> list[Any]:
    entries = [
        ("fetchOrder", lambda c: c.order_detail("BTCUSDT", order_id="1112202424673271809")),
        ("fetchOpenOrders", lambda c: c.pending_orders("BTCUSDT")),
        ("fetchBalance", lambda c: c.account()),
        ("fetchPosition", lambda c: c.position("BTCUSDT")),
        ("fetchPositions", lambda c: c.positions()),
        ("fetchLeverage", lambda c: c.account("BTCUSDT")),
        ("fetchTime", lambda c: c.server_time()),
        ("fetchMarkPrice", lambda c: c.symbol_price("BTCUSDT")),
        ("fetchTicker", lambda c: c.ticker("BTCUSDT")),
    ]
    params = []
    for method, fn in entries:
        case = VECTORS[method][0]
        params.append(pytest.param(case["url"], fn, id=f"{method}: {case['description']}"))
    tpsl = VECTORS["fetchOpenOrders"][1]
    params.append(
        pytest.param(tpsl["url"], lambda c: c.plan_orders_pending("profit_loss", "ADAUSDT"), id="tpsl")
    )
    return params


@responses.activate
@pytest.mark.parametrize(("url", "call"), _get_expectations())
def test_get_urls_match_ccxt(url: str, call: Any) -> None:
    expected = urlsplit(url)
    responses.get(f"{BASE}{expected.path}", json={"code": "00000", "data": None})
    with contextlib.suppress(Exception):  # the null data may not parse; only the request matters here
        call(make_client())
    sent = urlsplit(responses.calls[0].request.url)
    assert sent.path == expected.path
    ours = dict(parse_qsl(sent.query))
    theirs = dict(parse_qsl(expected.query))
    assert {k: v for k, v in ours.items() if k != "limit"} == theirs


def test_local_vectors_are_verbatim_copies_of_the_shared_fixture() -> None:
    if not SHARED.exists():
        pytest.skip("shared fixtures not present")
    shared = json.loads(SHARED.read_text())["methods"]
    for method, local_cases in VECTORS.items():
        for case in local_cases:
            assert case in shared[method], case["description"]
