"""Fuzz: every client method against junk replies. Whatever the exchange (or something in its place) answers,
the client raises a typed ``BitgetError`` or returns a model with validated numbers, at once: never another
exception, never a hang; a reply to a write that cannot be read is an unknown outcome (looked up, not re-sent)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.errors import BitgetError, UnknownOutcome
from exchange.bitget.models import OrderRequest, TpslRequest
from exchange.bitget.ws import WsError, parse_ticker_push
from exchange.sim.catalogue import DEFAULT_CONTRACTS, contract_row

BASE = "https://fuzz.bitget.invalid"
D = Decimal
CONTRACTS_BODY = json.dumps({"code": "00000", "msg": "success", "data": [contract_row(c) for c in DEFAULT_CONTRACTS]})

NASTY_NUMBERS = ["1E+999999999", "-1E+999999999", "1E-999999999", "NaN", "-Infinity", "Infinity", "sNaN", "-0",
                 "0", "-1", "-65000.5", "1e400", "9" * 5000, "0x10", "١٢٣", "1_000", " 5 ", ""]
KEYS = ["symbol", "instId", "lastPr", "bidPr", "askPr", "markPrice", "indexPrice", "ts", "price", "size",
        "orderId", "clientOid", "state", "status", "side", "tradeSide", "orderType", "baseVolume", "priceAvg",
        "cTime", "uTime", "holdSide", "total", "available", "locked", "openPriceAvg", "leverage", "marginMode",
        "marginCoin", "accountEquity", "usdtEquity", "triggerPrice", "planType", "planStatus", "tradeId",
        "feeDetail", "totalFee", "serverTime", "pricePlace", "volumePlace", "sizeMultiplier", "minTradeNum",
        "maxLever", "entrustedList", "fillList", "posMode", "liquidationPrice", "reduceOnly", "profit"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NASTY_NUMBERS), st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=8)),
    max_leaves=20,
)
rows = st.dictionaries(st.sampled_from(KEYS), values, min_size=3, max_size=20)
datas = st.one_of(values, rows, st.lists(rows, min_size=1, max_size=3),
                  st.fixed_dictionaries({"entrustedList": st.lists(rows, max_size=2)}),
                  st.fixed_dictionaries({"fillList": st.lists(rows, max_size=2)}))
raw_bodies = st.one_of(
    st.just(b"[" * 100_000 + b"]" * 100_000),
    st.just(b'{"code":"00000","data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    st.just(b"\xff\xfe\x00garbage"), st.just(b""), st.just(b"<html>502</html>"), st.binary(max_size=40),
    st.just(b'{"code":"00000","data":{"ts":1E+999999999,"lastPr":NaN,"symbol":"BTCUSDT"}}'),
)


def _body(data: Any) -> bytes:
    return json.dumps({"code": "00000", "msg": "success", "requestTime": 1, "data": data}, default=str).encode()


def _client() -> BitgetClient:
    return BitgetClient(BASE, Credentials("k" * 8, "s" * 8, "p" * 8), session=requests.Session(),
                        max_read_retries=0, sleep=lambda _s: None)


ORDER = OrderRequest(symbol="BTCUSDT", side="buy", size=D("0.010"), order_type="limit", price=D("65000.0"),
                     client_oid="fz_order_1")
STOP = TpslRequest(symbol="BTCUSDT", plan_type="pos_loss", trigger_price=D("64000.0"), hold_side="buy",
                   client_oid="fz_stop_1")

CALLS: dict[str, tuple[bool, Callable[[BitgetClient], object]]] = {  # name -> (is a write, call)
    "server_time": (False, lambda c: c.server_time()),
    "contracts": (False, lambda c: c.contracts(refresh=True)),
    "ticker": (False, lambda c: c.ticker("BTCUSDT")),
    "symbol_price": (False, lambda c: c.symbol_price("BTCUSDT")),
    "account": (False, lambda c: c.account()),
    "account_symbol": (False, lambda c: c.account("BTCUSDT")),
    "positions": (False, lambda c: c.positions()),
    "position": (False, lambda c: c.position("BTCUSDT")),
    "order_detail": (False, lambda c: c.order_detail("BTCUSDT", client_oid="fz_order_1")),
    "resolve_unknown": (False, lambda c: c.resolve_unknown("BTCUSDT", "fz_order_1")),
    "pending_orders": (False, lambda c: c.pending_orders("BTCUSDT")),
    "fills": (False, lambda c: c.fills("BTCUSDT")),
    "plan_orders_pending": (False, lambda c: c.plan_orders_pending("profit_loss", "BTCUSDT")),
    "resolve_unknown_plan": (False, lambda c: c.resolve_unknown_plan("BTCUSDT", "fz_stop_1")),
    "set_leverage": (True, lambda c: c.set_leverage("BTCUSDT", 5)),
    "set_margin_mode": (True, lambda c: c.set_margin_mode("BTCUSDT", "isolated")),
    "set_position_mode": (True, lambda c: c.set_position_mode("one_way_mode")),
    "place_order": (True, lambda c: c.place_order(ORDER)),
    "cancel_order": (True, lambda c: c.cancel_order("BTCUSDT", client_oid="fz_order_1")),
    "place_tpsl_order": (True, lambda c: c.place_tpsl_order(STOP)),
    "cancel_plan_order": (True, lambda c: c.cancel_plan_order("BTCUSDT", client_oid="fz_stop_1",
                                                              plan_type="profit_loss")),
}


def _run(name: str, body: bytes) -> BaseException | None:
    """Call one method against ``body`` for every endpoint but the contracts list; the error it raised."""
    call = CALLS[name][1]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        contracts = re.compile(re.escape(BASE) + r"/api/v2/mix/market/contracts.*")
        mock.add(responses.GET, contracts, body=body if name == "contracts" else CONTRACTS_BODY)
        for method in (responses.GET, responses.POST):
            mock.add(method, re.compile(re.escape(BASE) + r"/.*"), body=body)
        outcome: list[BaseException | None] = []

        def target() -> None:
            try:
                call(_client())
                outcome.append(None)
            except BaseException as exc:  # the test inspects whatever came out
                outcome.append(exc)

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join(timeout=20)  # generous for a loaded machine; a hang is hours
        assert not worker.is_alive(), f"{name} hangs on {body[:80]!r}"
    return outcome[0]


def _check(name: str, body: bytes) -> None:
    error = _run(name, body)
    if error is None:
        return
    assert isinstance(error, BitgetError), f"{name}: {type(error).__name__}: {error} on {body[:120]!r}"
    is_write = CALLS[name][0]
    if is_write and name in ("place_order", "place_tpsl_order", "cancel_order", "cancel_plan_order"):
        # The exchange answered "success" or something unreadable: what it did is unknown, never "rejected".
        assert isinstance(error, UnknownOutcome), f"{name}: {type(error).__name__} on {body[:120]!r}"


FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(CALLS))
@FUZZ
@given(data=datas)
def test_junk_data_in_a_success_envelope_is_a_typed_error(name: str, data: Any) -> None:
    _check(name, _body(data))


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=raw_bodies)
def test_undecodable_replies_are_typed_errors(name: str, body: bytes) -> None:
    _check(name, body)


@pytest.mark.parametrize("value", NASTY_NUMBERS)
def test_a_ticker_with_a_nasty_number_anywhere_is_refused_or_valid(value: str) -> None:
    for key in ("lastPr", "ts", "markPrice", "bidPr"):
        row = {"symbol": "BTCUSDT", "lastPr": "65000.1", "ts": "1700000000000", "markPrice": "65000.0",
               "bidPr": "64999.9", key: value}
        error = _run("ticker", _body([row]))
        if error is None:
            continue
        assert isinstance(error, BitgetError), f"{key}={value!r}: {type(error).__name__}: {error}"


@pytest.mark.parametrize(("key", "value"), [("lastPr", "-1"), ("lastPr", "0"), ("lastPr", "NaN"),
                                            ("markPrice", "-5")])
def test_a_non_positive_price_never_becomes_a_ticker(key: str, value: str) -> None:
    row = {"symbol": "BTCUSDT", "lastPr": "65000.1", "ts": "1700000000000", "markPrice": "65000.0", key: value}
    assert isinstance(_run("ticker", _body([row])), BitgetError)


def test_the_audit_cases_each_become_a_typed_error() -> None:
    ticker = {"symbol": "BTCUSDT", "lastPr": "65000.1", "ts": "1E+999999999"}
    assert isinstance(_run("ticker", _body([ticker])), BitgetError)  # int(Decimal) used to run for hours
    assert isinstance(_run("ticker", _body([{**ticker, "ts": "1", "symbol": 12.5}])), BitgetError)
    assert isinstance(_run("ticker", _body([{**ticker, "ts": "1", "symbol": ["BTCUSDT"]}])), BitgetError)
    nested = b'{"code":"00000","data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert isinstance(_run("place_order", nested), UnknownOutcome)  # was RecursionError: order left SUBMITTED
    assert isinstance(_run("positions", nested), BitgetError)


@settings(max_examples=150, deadline=None)
@given(frame=st.one_of(
    st.builds(lambda rows: json.dumps({"arg": {"channel": "ticker", "instId": "BTCUSDT"}, "data": rows},
                                      default=str), st.lists(st.one_of(rows, values), max_size=3)),
    st.text(max_size=50), st.just('{"arg":{"channel":"ticker"},"data":' + "[" * 50_000 + "]" * 50_000 + "}")))
def test_websocket_ticker_frames_never_raise_anything_untyped(frame: str) -> None:
    try:
        tickers = parse_ticker_push(frame)
    except WsError:
        return
    for ticker in tickers or []:
        assert ticker.last > 0 and ticker.last.is_finite()
