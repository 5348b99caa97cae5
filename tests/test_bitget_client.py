"""BitgetClient behaviour: retry policy, unknown outcomes, typed replies, refusal of off-step orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.errors import (
    DuplicateClientOid,
    ExchangeUnavailable,
    InvalidParameter,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    TimestampExpired,
    UnknownOutcome,
    UnknownSymbol,
)
from exchange.bitget.models import OrderRequest, TpslRequest
from exchange.bitget.ratelimit import Backoff, RateLimiter

BASE = "https://api.bitget.com"
PLACE = f"{BASE}/api/v2/mix/order/place-order"
DETAIL = f"{BASE}/api/v2/mix/order/detail"
POSITIONS = f"{BASE}/api/v2/mix/position/all-position"
CONTRACTS = f"{BASE}/api/v2/mix/market/contracts"

BTC_CONTRACT_ROW = {
    "symbol": "BTCUSDT",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "minTradeNum": "0.001",
    "priceEndStep": "1",
    "volumePlace": "3",
    "pricePlace": "1",
    "sizeMultiplier": "0.001",
    "minTradeUSDT": "5",
    "maxLever": "125",
    "minLever": "1",
    "makerFeeRate": "0.0002",
    "takerFeeRate": "0.0006",
    "symbolStatus": "normal",
}
ORDER_DETAIL_ROW = {
    "symbol": "BTCUSDT",
    "size": "0.001",
    "orderId": "1111465253393825792",
    "clientOid": "cid-1",
    "baseVolume": "0",
    "fee": "0",
    "price": "27000",
    "priceAvg": "",
    "state": "live",
    "side": "buy",
    "force": "gtc",
    "totalProfits": "0",
    "posSide": "long",
    "marginCoin": "USDT",
    "presetStopSurplusPrice": "",
    "presetStopLossPrice": "",
    "quoteVolume": "0",
    "orderType": "limit",
    "leverage": "20",
    "marginMode": "crossed",
    "reduceOnly": "NO",
    "enterPointSource": "API",
    "tradeSide": "open",
    "posMode": "hedge_mode",
    "orderSource": "normal",
    "cTime": "1700719887120",
    "uTime": "1700719887120",
}
POSITION_ROW = {
    "marginCoin": "USDT",
    "symbol": "BTCUSDT",
    "holdSide": "long",
    "openDelegateSize": "0",
    "marginSize": "3.73555",
    "available": "0.002",
    "locked": "0",
    "total": "0.002",
    "leverage": "20",
    "achievedProfits": "0",
    "openPriceAvg": "37355.5",
    "marginMode": "crossed",
    "posMode": "hedge_mode",
    "unrealizedPL": "0.007",
    "liquidationPrice": "31724.970702417",
    "keepMarginRate": "0.004",
    "markPrice": "37359",
    "marginRatio": "0.029599540355",
    "cTime": "1700807507275",
}


def ok(data: Any) -> dict[str, Any]:
    return {"code": "00000", "msg": "success", "requestTime": 1700000000000, "data": data}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.waits: list[float] = []
        self.sleeps: list[float] = []
        self.repeated: list[int] = []

    def on_request(self, endpoint: str, result: str, seconds: float) -> None:
        self.requests.append((endpoint, result))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def client(rec: Recorder) -> BitgetClient:
    return BitgetClient(
        BASE,
        Credentials("k", "s", "p"),
        session=requests.Session(),  # the `responses` mocks intercept requests sessions
        on_request=rec.on_request,
        rate_limiter=RateLimiter(sleep=lambda s: None),
        backoff=Backoff(
            sleep=rec.sleeps.append,
            rng=lambda: 0.0,
            on_wait=rec.waits.append,
            on_repeated_limit=rec.repeated.append,
            repeat_threshold=2,
        ),
        sleep=rec.sleeps.append,
        time_source=lambda: 1_700_000_000.0,
    )


def market_buy(client_oid: str = "cid-1") -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDT", side="buy", size=Decimal("0.001"), order_type="market", client_oid=client_oid
    )


# --- writes: exactly once -------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [requests.exceptions.ReadTimeout("slow"), requests.exceptions.ConnectionError("reset by peer")],
)
def test_place_order_timeout_is_unknown_outcome_and_sent_exactly_once(
    client: BitgetClient, rec: Recorder, failure: Exception
) -> None:
    responses.post(PLACE, body=failure)
    with pytest.raises(UnknownOutcome):
        client.place_order(market_buy())
    assert len(responses.calls) == 1
    assert rec.requests[-1][1] in ("timeout", "error")


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_place_order_5xx_is_unknown_outcome_and_not_retried(client: BitgetClient, status: int) -> None:
    responses.post(PLACE, status=status, body="upstream error")
    with pytest.raises(UnknownOutcome) as info:
        client.place_order(market_buy())
    assert info.value.http_status == status
    assert len(responses.calls) == 1


@responses.activate
def test_place_order_http_200_unreadable_reply_is_unknown_outcome(client: BitgetClient) -> None:
    responses.post(PLACE, status=200, body='{"code":"000')
    with pytest.raises(UnknownOutcome):
        client.place_order(market_buy())


@responses.activate
def test_place_order_connect_timeout_means_nothing_was_sent(client: BitgetClient) -> None:
    responses.post(PLACE, body=requests.exceptions.ConnectTimeout("no route"))
    with pytest.raises(ExchangeUnavailable) as info:
        client.place_order(market_buy())
    assert not isinstance(info.value, UnknownOutcome)
    assert len(responses.calls) == 1


@responses.activate
def test_place_order_429_is_rate_limited_with_a_suggested_wait_and_not_retried(
    client: BitgetClient, rec: Recorder
) -> None:
    responses.post(PLACE, status=429, body="Too Many Requests")
    with pytest.raises(RateLimited) as info:
        client.place_order(market_buy())
    assert len(responses.calls) == 1
    assert info.value.retry_after is not None and info.value.retry_after > 0
    assert rec.requests == [("/api/v2/mix/order/place-order", "rate_limited")]
    assert rec.sleeps == []  # a write never blocks the caller on a limit


@responses.activate
def test_duplicate_client_oid_is_definitive(client: BitgetClient) -> None:
    responses.post(PLACE, status=400, json={"code": "40786", "msg": "Duplicate clientOid", "data": None})
    with pytest.raises(DuplicateClientOid):
        client.place_order(market_buy())


@responses.activate
def test_resolve_unknown_finds_the_order_by_client_id_or_returns_none(client: BitgetClient) -> None:
    responses.get(DETAIL, json=ok(ORDER_DETAIL_ROW))
    responses.get(DETAIL, status=400, json={"code": "40109", "msg": "order does not exist", "data": None})
    found = client.resolve_unknown("BTCUSDT", "cid-1")
    assert found is not None and found.client_oid == "cid-1" and found.state == "live"
    assert "clientOid=cid-1" in responses.calls[0].request.url
    assert client.resolve_unknown("BTCUSDT", "cid-2") is None


@responses.activate
def test_one_way_reduce_only_reply_without_order_id_keeps_the_client_id(client: BitgetClient) -> None:
    responses.post(PLACE, json=ok({"orderId": "", "clientOid": ""}))
    request = OrderRequest(
        symbol="BTCUSDT",
        side="sell",
        size=Decimal("0.001"),
        order_type="market",
        reduce_only=True,
        client_oid="close-1",
    )
    placed = client.place_order(request)
    assert placed.order_id is None and placed.client_oid == "close-1"


# --- reads: bounded retries -----------------------------------------------------------------------------


@responses.activate
def test_read_is_retried_on_5xx_then_succeeds(client: BitgetClient, rec: Recorder) -> None:
    responses.get(POSITIONS, status=503, body="busy")
    responses.get(POSITIONS, body=requests.exceptions.ReadTimeout("slow"))
    responses.get(POSITIONS, json=ok([POSITION_ROW]))
    positions = client.positions()
    assert len(responses.calls) == 3
    assert [p.symbol for p in positions] == ["BTCUSDT"]
    assert [r for _, r in rec.requests] == ["error", "timeout", "ok"]
    assert len(rec.sleeps) == 2 and all(0 < s <= 2.0 for s in rec.sleeps)


@responses.activate
def test_read_gives_up_after_the_retry_budget(client: BitgetClient) -> None:
    responses.get(POSITIONS, status=502, body="bad gateway")
    with pytest.raises(ExchangeUnavailable):
        client.positions()
    assert len(responses.calls) == 1 + client.max_read_retries


@responses.activate
def test_read_429_backs_off_then_retries_and_reports_repeats(client: BitgetClient, rec: Recorder) -> None:
    responses.get(POSITIONS, status=429, json={"code": "429", "msg": "Too Many Requests"})
    responses.get(POSITIONS, status=429, json={"code": "429", "msg": "Too Many Requests"})
    responses.get(POSITIONS, json=ok([]))
    assert client.positions() == []
    assert len(rec.waits) == 2 and rec.waits[1] > rec.waits[0]
    assert rec.repeated == [2]
    assert [r for _, r in rec.requests] == ["rate_limited", "rate_limited", "ok"]


@responses.activate
def test_timestamp_error_resyncs_the_clock_once_and_retries_a_read(client: BitgetClient) -> None:
    responses.get(POSITIONS, status=400, json={"code": "40008", "msg": "Request timestamp expired"})
    responses.get(f"{BASE}/api/v2/public/time", json=ok({"serverTime": "1700000009000"}))
    responses.get(POSITIONS, json=ok([]))
    assert client.positions() == []
    assert client.time_offset_ms == 9000
    assert responses.calls[2].request.headers["ACCESS-TIMESTAMP"] == "1700000009000"


@responses.activate
def test_timestamp_error_on_a_write_resyncs_but_does_not_resend(client: BitgetClient) -> None:
    responses.post(PLACE, status=400, json={"code": "40005", "msg": "Invalid ACCESS_TIMESTAMP"})
    responses.get(f"{BASE}/api/v2/public/time", json=ok({"serverTime": "1700000001000"}))
    with pytest.raises(TimestampExpired):
        client.place_order(market_buy())
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]
    assert client.time_offset_ms == 1000


# --- typed replies --------------------------------------------------------------------------------------


@responses.activate
def test_order_detail_parses_decimals_and_empty_strings(client: BitgetClient) -> None:
    responses.get(DETAIL, json=ok(ORDER_DETAIL_ROW))
    order = client.order_detail("BTCUSDT", order_id="1111465253393825792")
    assert order.price == Decimal("27000") and order.avg_price is None
    assert order.filled_size == Decimal(0) and order.trade_side == "open" and not order.reduce_only
    assert order.is_open and order.c_time == 1700719887120


@responses.activate
def test_malformed_row_raises_malformed_response_not_key_error(client: BitgetClient) -> None:
    row = dict(POSITION_ROW)
    del row["openPriceAvg"]
    responses.get(POSITIONS, json=ok([row]))
    with pytest.raises(MalformedResponse, match="openPriceAvg"):
        client.positions()


@responses.activate
def test_pending_orders_handles_null_list_and_status_key(client: BitgetClient) -> None:
    url = f"{BASE}/api/v2/mix/order/orders-pending"
    responses.get(url, json=ok({"entrustedList": None, "endId": None}))
    assert client.pending_orders("BTCUSDT") == []
    row = {k: v for k, v in ORDER_DETAIL_ROW.items() if k != "state"} | {"status": "partially_filled"}
    responses.get(url, json=ok({"entrustedList": [row], "endId": "1"}))
    (order,) = client.pending_orders()
    assert order.state == "partially_filled"


@responses.activate
def test_fills_sum_fee_details(client: BitgetClient) -> None:
    fill = {
        "tradeId": "t1",
        "symbol": "BTCUSDT",
        "orderId": "o1",
        "price": "37271.4",
        "baseVolume": "0.001",
        "feeDetail": [
            {"deduction": "no", "feeCoin": "USDT", "totalDeductionFee": None, "totalFee": "-0.02236284"}
        ],
        "side": "buy",
        "quoteVolume": "37.2714",
        "profit": "-0.0007",
        "tradeSide": "close",
        "cTime": "1700720700342",
    }
    responses.get(f"{BASE}/api/v2/mix/order/fills", json=ok({"fillList": [fill], "endId": "t1"}))
    (parsed,) = client.fills("BTCUSDT", order_id="o1")
    assert (
        parsed.fee == Decimal("-0.02236284")
        and parsed.size == Decimal("0.001")
        and parsed.ts == 1700720700342
    )


@responses.activate
def test_account_reads_equity_and_position_mode(client: BitgetClient) -> None:
    row = {
        "marginCoin": "USDT",
        "locked": "0",
        "available": "13168.86110692",
        "crossedMaxAvailable": "13168.86",
        "isolatedMaxAvailable": "13168.86",
        "accountEquity": "13178.86110692",
        "usdtEquity": "13178.861106922",
        "posMode": "hedge_mode",
        "unrealizedPL": "",
        "crossedUnrealizedPL": "23",
        "isolatedUnrealizedPL": "0",
        "crossedMarginLeverage": 20,
    }
    responses.get(f"{BASE}/api/v2/mix/account/account", json=ok(row))
    assert client.position_mode("BTCUSDT") == "hedge_mode"
    account = client.account("BTCUSDT")
    assert account.equity == Decimal("13178.86110692") and account.unrealized_pnl == Decimal(23)


@responses.activate
def test_ticker_reads_the_single_element_list(client: BitgetClient) -> None:
    row = {
        "symbol": "BTCUSDT",
        "lastPr": "104823.8",
        "askPr": "104823.8",
        "bidPr": "104823.5",
        "markPrice": "104824.2",
        "indexPrice": "104881.953125",
        "ts": "1750332210370",
    }
    responses.get(f"{BASE}/api/v2/mix/market/ticker", json=ok([row]))
    ticker = client.ticker("BTCUSDT")
    assert (
        ticker.last == Decimal("104823.8")
        and ticker.mark == Decimal("104824.2")
        and ticker.ts == 1750332210370
    )
    assert "ACCESS-KEY" not in responses.calls[0].request.headers


# --- contracts and refusals -----------------------------------------------------------------------------


@responses.activate
def test_contracts_are_cached_and_unknown_symbols_refused(client: BitgetClient) -> None:
    bad_row = {"symbol": "BADUSDT", "pricePlace": "x"}
    responses.get(CONTRACTS, json=ok([BTC_CONTRACT_ROW, bad_row]))
    assert [c.symbol for c in client.contracts()] == ["BTCUSDT"]
    assert client.contract("BTCUSDT").tick_size == Decimal("0.1")
    assert client.contract("BTCUSDT").size_step == Decimal("0.001")
    assert len(responses.calls) == 1  # cached
    with pytest.raises(UnknownSymbol):
        client.contract("BADUSDT")  # malformed row skipped, fresh cache not refetched
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    ("size", "price", "code"),
    [
        (Decimal("0.0015"), Decimal("30000"), "size_step"),
        (Decimal("0.001"), Decimal("30000.05"), "price_tick"),
        (Decimal("0.0001"), Decimal("30000"), "size_step"),
        (Decimal("0.001"), Decimal("3000"), "min_notional"),
    ],
)
def test_off_step_or_too_small_orders_are_refused_before_sending(
    client: BitgetClient, size: Decimal, price: Decimal, code: str
) -> None:
    responses.get(CONTRACTS, json=ok([BTC_CONTRACT_ROW]))
    client.contracts()
    request = OrderRequest(symbol="BTCUSDT", side="buy", size=size, order_type="limit", price=price)
    with pytest.raises(InvalidParameter) as info:
        client.place_order(request)
    assert info.value.code == code
    assert len(responses.calls) == 1  # only the contracts fetch


@responses.activate
def test_tpsl_trigger_off_tick_is_refused(client: BitgetClient) -> None:
    responses.get(CONTRACTS, json=ok([BTC_CONTRACT_ROW]))
    client.contracts()
    request = TpslRequest(
        symbol="BTCUSDT", plan_type="pos_loss", trigger_price=Decimal("100.05"), hold_side="long"
    )
    with pytest.raises(InvalidParameter):
        client.place_tpsl_order(request)


@responses.activate
def test_cancel_plan_order_requires_an_id_and_reports_failures(client: BitgetClient) -> None:
    with pytest.raises(ValueError):
        client.cancel_plan_order("BTCUSDT", plan_type="pos_loss")  # would cancel ALL of them
    url = f"{BASE}/api/v2/mix/order/cancel-plan-order"
    responses.post(
        url, json=ok({"successList": [], "failureList": [{"orderId": "9", "errorMsg": "not exist"}]})
    )
    with pytest.raises(OrderNotFound):
        client.cancel_plan_order("BTCUSDT", plan_type="pos_loss", order_id="9")
    responses.post(url, json=ok({"successList": [{"orderId": "9", "clientOid": "c9"}], "failureList": []}))
    assert client.cancel_plan_order("BTCUSDT", plan_type="pos_loss", order_id="9").order_id == "9"


def test_order_request_rejects_contradictory_shapes() -> None:
    with pytest.raises(ValueError):
        OrderRequest(symbol="BTCUSDT", side="buy", size=Decimal(1), order_type="limit")
    with pytest.raises(ValueError):
        OrderRequest(
            symbol="BTCUSDT",
            side="buy",
            size=Decimal(1),
            order_type="market",
            trade_side="close",
            reduce_only=True,
        )
    with pytest.raises(ValueError):
        OrderRequest(symbol="BTCUSDT", side="buy", size=Decimal(-1), order_type="market")
    with pytest.raises(ValueError):
        TpslRequest(symbol="BTCUSDT", plan_type="loss_plan", trigger_price=Decimal(1), hold_side="long")


@responses.activate
def test_on_request_hook_failure_does_not_break_calls() -> None:
    def broken(endpoint: str, result: str, seconds: float) -> None:
        raise RuntimeError("metrics down")

    responses.get(POSITIONS, json=ok([]))
    client = BitgetClient(
        BASE, Credentials("k", "s", "p"), on_request=broken, rate_limiter=RateLimiter(sleep=lambda s: None),
        session=requests.Session(),
    )
    assert client.positions() == []
