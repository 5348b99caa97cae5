"""Signed requests match the published Bitget signature vectors (reference notes §1.3)."""

from __future__ import annotations

from decimal import Decimal

import requests
import responses

from exchange.bitget import signing
from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.models import OrderRequest
from exchange.bitget.ratelimit import RateLimiter

KEY, SECRET, PASSPHRASE = "test-key", "test-secret", "test-pass"
NOW_S = 1_700_000_000.0
BASE = "https://api.bitget.com"

POST_BODY = (
    '{"symbol":"BTCUSDT","productType":"USDT-FUTURES","marginMode":"crossed","marginCoin":"USDT",'
    '"size":"0.001","price":"25000","side":"buy","tradeSide":"open","orderType":"limit","force":"gtc",'
    '"clientOid":"abc123"}'
)
POST_SIGN = "xJ4x484c2QCTFpgFCFlMAFchvfSSccJpV3Znzve5Aqg="
GET_SIGN = "QiK6FqptfjHMJibBnsT4PrYpu5XGBD27Z7TMKqDZ9LU="
WS_SIGN = "QKXMEacdjBcrVZaxWVJypn62KNrQGzBErbiQtYn6KO8="


def _client(**kwargs: object) -> BitgetClient:
    return BitgetClient(
        BASE,
        Credentials(KEY, SECRET, PASSPHRASE),
        session=requests.Session(),  # the `responses` mocks intercept requests sessions
        time_source=lambda: NOW_S,
        rate_limiter=RateLimiter(sleep=lambda s: None),
        sleep=lambda s: None,
        **kwargs,  # type: ignore[arg-type]
    )


def test_sign_matches_published_post_and_get_vectors() -> None:
    ts = "1700000000000"
    assert signing.sign(SECRET, ts, "POST", "/api/v2/mix/order/place-order", "", POST_BODY) == POST_SIGN
    query = signing.canonical_query(
        {"symbol": "BTCUSDT", "productType": "USDT-FUTURES", "marginCoin": "USDT"}
    )
    assert query == "marginCoin=USDT&productType=USDT-FUTURES&symbol=BTCUSDT"
    assert signing.sign(SECRET, ts, "GET", "/api/v2/mix/position/single-position", query) == GET_SIGN


def test_ws_login_signature_uses_seconds_and_fixed_path() -> None:
    assert signing.sign_ws_login(SECRET, "1700000000") == WS_SIGN


@responses.activate
def test_place_order_sends_exact_body_and_headers_of_the_vector() -> None:
    responses.post(
        f"{BASE}/api/v2/mix/order/place-order",
        json={"code": "00000", "msg": "success", "data": {"orderId": "1", "clientOid": "abc123"}},
    )
    request = OrderRequest(
        symbol="BTCUSDT",
        side="buy",
        size=Decimal("0.001"),
        order_type="limit",
        price=Decimal("25000"),
        trade_side="open",
        client_oid="abc123",
        margin_mode="crossed",
    )
    placed = _client().place_order(request)

    assert placed.order_id == "1"
    sent = responses.calls[0].request
    assert sent.body.decode() == POST_BODY
    assert sent.headers["ACCESS-SIGN"] == POST_SIGN
    assert sent.headers["ACCESS-KEY"] == KEY
    assert sent.headers["ACCESS-PASSPHRASE"] == PASSPHRASE
    assert sent.headers["ACCESS-TIMESTAMP"] == "1700000000000"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["locale"] == "en-US"
    assert "paptrading" not in sent.headers


@responses.activate
def test_signed_get_sends_the_sorted_query_it_signed() -> None:
    responses.get(f"{BASE}/api/v2/mix/position/single-position", json={"code": "00000", "data": []})
    assert _client().position("BTCUSDT") == []
    sent = responses.calls[0].request
    assert sent.url == (
        f"{BASE}/api/v2/mix/position/single-position?marginCoin=USDT&productType=USDT-FUTURES&symbol=BTCUSDT"
    )
    assert sent.headers["ACCESS-SIGN"] == GET_SIGN
    assert "Content-Type" not in sent.headers


@responses.activate
def test_demo_mode_adds_paptrading_header_except_on_server_time() -> None:
    responses.get(f"{BASE}/api/v2/mix/position/all-position", json={"code": "00000", "data": []})
    responses.get(
        f"{BASE}/api/v2/public/time", json={"code": "00000", "data": {"serverTime": "1700000000500"}}
    )
    client = _client(demo=True)
    client.positions()
    client.server_time()
    assert responses.calls[0].request.headers["paptrading"] == "1"
    assert "paptrading" not in responses.calls[1].request.headers


@responses.activate
def test_sync_time_offset_is_used_in_the_signed_timestamp() -> None:
    responses.get(
        f"{BASE}/api/v2/public/time", json={"code": "00000", "data": {"serverTime": "1700000002500"}}
    )
    responses.get(f"{BASE}/api/v2/mix/position/all-position", json={"code": "00000", "data": []})
    client = _client()
    assert client.sync_time() == 2500
    client.positions()
    assert responses.calls[1].request.headers["ACCESS-TIMESTAMP"] == "1700000002500"


@responses.activate
def test_public_requests_carry_no_credentials() -> None:
    responses.get(f"{BASE}/api/v2/public/time", json={"code": "00000", "data": {"serverTime": "1"}})
    _client().server_time()
    headers = responses.calls[0].request.headers
    assert not any(name.startswith("ACCESS-") for name in headers)


def test_credentials_and_client_reprs_hide_secrets() -> None:
    creds = Credentials("my-key-123", "my-secret-456", "my-pass-789")
    for text in (repr(creds), str(creds), repr(_client()), repr(BitgetClient(BASE, creds))):
        for secret in ("my-key-123", "my-secret-456", "my-pass-789", KEY, SECRET, PASSPHRASE):
            assert secret not in text
