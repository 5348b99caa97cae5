"""Exchange error codes map to the classes callers branch on; messages stay clean."""

from __future__ import annotations

import pickle

import pytest
import requests
import responses

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.errors import (
    DUPLICATE_CLIENT_OID_CODES,
    AuthError,
    BitgetError,
    DuplicateClientOid,
    ExchangeUnavailable,
    InsufficientFunds,
    InsufficientPosition,
    InvalidParameter,
    MalformedResponse,
    OrderNotFound,
    PositionModeError,
    RateLimited,
    TimestampExpired,
    error_from_code,
)
from exchange.bitget.ratelimit import Backoff, RateLimiter

BASE = "https://api.bitget.com"
SECRETS = ("key-AAAA", "secret-BBBB", "pass-CCCC")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("40786", DuplicateClientOid),
        ("40708", DuplicateClientOid),
        ("43118", DuplicateClientOid),
        ("45034", DuplicateClientOid),
        ("50060", DuplicateClientOid),
        ("40762", InsufficientFunds),
        ("43012", InsufficientFunds),
        ("43001", OrderNotFound),
        ("40768", OrderNotFound),
        ("40109", OrderNotFound),
        ("43020", OrderNotFound),
        ("40009", AuthError),
        ("40099", AuthError),
        ("40008", TimestampExpired),
        ("40808", InvalidParameter),
        ("45110", InvalidParameter),
        ("40757", InsufficientPosition),
        ("40774", PositionModeError),
        ("40920", PositionModeError),
        ("429", RateLimited),
    ],
)
def test_exchange_codes_map_to_typed_errors(code: str, cls: type[BitgetError]) -> None:
    error = error_from_code(code, "msg", "/api/v2/mix/order/place-order")
    assert type(error) is cls
    assert error.code == code
    assert "/api/v2/mix/order/place-order" in str(error)


def test_all_five_duplicate_client_oid_codes_are_known() -> None:
    assert {"40786", "40708", "43118", "45034", "50060"} == DUPLICATE_CLIENT_OID_CODES


def test_unknown_code_is_a_plain_bitget_error_that_keeps_code_and_message() -> None:
    error = error_from_code("99999", "something new", "/x")
    assert type(error) is BitgetError
    assert (error.code, error.message, error.endpoint) == ("99999", "something new", "/x")


def test_errors_survive_pickling_across_actor_futures() -> None:
    error = error_from_code("40786", "Duplicate clientOid", "/p")
    error.http_status = 400
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is DuplicateClientOid
    assert (clone.code, clone.message, clone.endpoint, clone.http_status) == (
        "40786",
        "Duplicate clientOid",
        "/p",
        400,
    )


def test_rate_limited_keeps_its_retry_after_when_pickled() -> None:
    error = RateLimited("429", "slow down", "/p", http_status=429, retry_after=1.5)
    clone = pickle.loads(pickle.dumps(error))
    assert (type(clone), clone.retry_after, clone.http_status) == (RateLimited, 1.5, 429)


def _client() -> BitgetClient:
    return BitgetClient(
        BASE,
        Credentials(*SECRETS),
        session=requests.Session(),  # the `responses` mocks intercept requests sessions
        rate_limiter=RateLimiter(sleep=lambda s: None),
        backoff=Backoff(sleep=lambda s: None, rng=lambda: 0.0),
        sleep=lambda s: None,
    )


def _assert_clean(error: BaseException) -> None:
    text = str(error) + repr(error) + repr(error.args)
    for secret in SECRETS:
        assert secret not in text


@responses.activate
@pytest.mark.parametrize("status", [200, 400])
def test_business_error_is_raised_from_the_envelope_whatever_the_http_status(status: int) -> None:
    responses.post(
        f"{BASE}/api/v2/mix/account/set-leverage",
        status=status,
        json={"code": "40762", "msg": "The order amount exceeds the balance", "data": None},
    )
    with pytest.raises(InsufficientFunds) as info:
        _client().set_leverage("BTCUSDT", 5)
    assert info.value.http_status == status
    assert "exceeds the balance" in str(info.value)
    _assert_clean(info.value)


@responses.activate
def test_http_200_html_page_on_a_read_is_malformed_not_a_crash() -> None:
    responses.get(f"{BASE}/api/v2/mix/position/all-position", body="<html>gateway</html>", status=200)
    with pytest.raises(MalformedResponse):
        _client().positions()


@responses.activate
def test_connection_errors_never_leak_headers_or_secrets() -> None:
    responses.get(f"{BASE}/api/v2/mix/position/all-position", body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(ExchangeUnavailable) as info:
        _client().positions()
    _assert_clean(info.value)
    assert info.value.__suppress_context__


@responses.activate
def test_auth_failure_is_not_retried() -> None:
    responses.get(
        f"{BASE}/api/v2/mix/position/all-position",
        status=400,
        json={"code": "40009", "msg": "sign signature error", "data": None},
    )
    with pytest.raises(AuthError):
        _client().positions()
    assert len(responses.calls) == 1
