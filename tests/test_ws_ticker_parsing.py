"""Ticker pushes from the public WebSocket become typed tickers; everything else is handled safely."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchange.bitget.ws import WsError, parse_ticker_push, subscribe_message

REAL_PUSH = (
    '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"},'
    '"data":[{"instId":"BTCUSDT","lastPr":"43480.4","bidPr":"43476.3","askPr":"43476.8","bidSz":"0.1",'
    '"askSz":"3.055","open24h":"42252.3","high24h":"44518.2","low24h":"41387.0","change24h":"0.03875",'
    '"fundingRate":"0.000096","nextFundingTime":"1701849600000","markPrice":"43476.4","indexPrice":"43478.4",'
    '"holdingAmount":"50670.787","baseVolume":"120187.104","quoteVolume":"5167385048.693","openUtc":"44071.4",'
    '"symbolType":"1","symbol":"BTCUSDT","deliveryPrice":"0","ts":"1701843962811"}],"ts":1701843962812}'
)


def push(rows: list[dict[str, object]], action: str = "snapshot", inst_id: str = "BTCUSDT") -> str:
    arg = {"instType": "USDT-FUTURES", "channel": "ticker", "instId": inst_id}
    return json.dumps({"action": action, "arg": arg, "data": rows, "ts": 1})


def test_real_snapshot_push_parses_all_prices() -> None:
    (ticker,) = parse_ticker_push(REAL_PUSH) or []
    assert ticker.symbol == "BTCUSDT"
    assert ticker.last == Decimal("43480.4")
    assert (ticker.bid, ticker.ask) == (Decimal("43476.3"), Decimal("43476.8"))
    assert (ticker.mark, ticker.index) == (Decimal("43476.4"), Decimal("43478.4"))
    assert ticker.ts == 1701843962811


def test_bytes_frames_are_accepted() -> None:
    assert parse_ticker_push(REAL_PUSH.encode()) == parse_ticker_push(REAL_PUSH)


def test_update_push_with_several_rows_and_numeric_fields() -> None:
    rows = [
        {"instId": "BTCUSDT", "lastPr": 43000.5, "bidPr": "43000", "askPr": "43001", "ts": 1701843962811},
        {"instId": "ETHUSDT", "lastPr": "2300.1", "ts": "1701843962812"},
    ]
    tickers = parse_ticker_push(push(rows, action="update")) or []
    assert [t.symbol for t in tickers] == ["BTCUSDT", "ETHUSDT"]
    assert tickers[0].last == Decimal("43000.5")
    assert tickers[1].bid is None and tickers[1].mark is None


def test_row_without_inst_id_takes_it_from_arg() -> None:
    (ticker,) = parse_ticker_push(push([{"lastPr": "1.5", "ts": "5"}], inst_id="XRPUSDT")) or []
    assert ticker.symbol == "XRPUSDT"


def test_malformed_rows_are_skipped_without_hiding_good_ones() -> None:
    rows = [
        {"instId": "BTCUSDT", "lastPr": "not-a-number", "ts": "1"},
        {"instId": "BTCUSDT", "ts": "1"},
        "garbage",
        {"instId": "BTCUSDT", "lastPr": "NaN", "ts": "1"},
        {"instId": "ETHUSDT", "lastPr": "2300", "ts": "2"},
    ]
    tickers = parse_ticker_push(push(rows)) or []
    assert [t.symbol for t in tickers] == ["ETHUSDT"]


@pytest.mark.parametrize(
    "frame",
    [
        "pong",
        " pong\n",
        '{"event":"subscribe","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"}}',
        '{"event":"unsubscribe","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"}}',
        '{"event":"login","code":0}',
        '{"message":"pong"}',
        '{"data":"pong"}',
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books5","instId":"BTCUSDT"},"data":[]}',
        '{"action":"snapshot","arg":{"channel":"ticker"},"data":{"not":"a list"}}',
        "",
        "not json at all",
        "[1, 2, 3]",
        "null",
        b"\xff\xfe",
    ],
)
def test_frames_without_tickers_give_none(frame: str | bytes) -> None:
    assert parse_ticker_push(frame) is None


def test_empty_data_list_gives_empty_list() -> None:
    assert parse_ticker_push(push([])) == []


def test_error_event_raises_ws_error_with_code() -> None:
    frame = '{"event":"error","code":30001,"msg":"instType:sp,channel:ticker,instId:NOPE doesn\'t exist"}'
    with pytest.raises(WsError) as info:
        parse_ticker_push(frame)
    assert info.value.code == "30001"
    assert "doesn't exist" in str(info.value)


def test_subscribe_message_shape() -> None:
    message = json.loads(subscribe_message(["BTCUSDT", "ETHUSDT"]))
    assert message == {
        "op": "subscribe",
        "args": [
            {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "BTCUSDT"},
            {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "ETHUSDT"},
        ],
    }
    assert json.loads(subscribe_message(["BTCUSDT"], op="unsubscribe"))["op"] == "unsubscribe"
