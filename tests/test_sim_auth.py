"""The simulator authenticates private calls exactly like Bitget and answers in Bitget's envelope."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from exchange.sim.testing import RunningSim, running_sim

ACCOUNT = "/api/v2/mix/account/account"
ACCOUNT_QUERY = {"symbol": "BTCUSDT", "productType": "USDT-FUTURES", "marginCoin": "USDT"}


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=1) as running:
        yield running


def _signed_account_call(sim: RunningSim, **header_overrides: str) -> dict:
    query = "marginCoin=USDT&productType=USDT-FUTURES&symbol=BTCUSDT"
    headers = sim.headers("GET", ACCOUNT, query)
    headers.update(header_overrides)
    headers = {k: v for k, v in headers.items() if v != "<drop>"}
    reply = sim.session.get(f"{sim.base_url}{ACCOUNT}?{query}", headers=headers, timeout=5)
    assert reply.status_code == 400
    body = reply.json()
    assert body["data"] is None and isinstance(body["requestTime"], int)
    return body


def test_correctly_signed_private_call_succeeds_with_success_envelope(sim: RunningSim) -> None:
    reply = sim.get(ACCOUNT, ACCOUNT_QUERY)
    assert reply.status_code == 200
    body = reply.json()
    assert body["code"] == "00000" and body["msg"] == "success"
    assert isinstance(body["requestTime"], int)
    assert body["data"]["marginCoin"] == "USDT"
    assert body["data"]["accountEquity"] == "10000"


def test_wrong_signature_is_rejected_with_40009(sim: RunningSim) -> None:
    assert _signed_account_call(sim, **{"ACCESS-SIGN": "bm90IGEgc2lnbmF0dXJl"})["code"] == "40009"


def test_signature_over_a_different_query_order_is_rejected(sim: RunningSim) -> None:
    # The signed string must be the query as sent: signing sorted params but sending another order fails.
    query_sent = "symbol=BTCUSDT&productType=USDT-FUTURES&marginCoin=USDT"
    headers = sim.headers("GET", ACCOUNT, "marginCoin=USDT&productType=USDT-FUTURES&symbol=BTCUSDT")
    reply = sim.session.get(f"{sim.base_url}{ACCOUNT}?{query_sent}", headers=headers, timeout=5)
    assert reply.json()["code"] == "40009"


def test_wrong_passphrase_is_rejected_with_40012(sim: RunningSim) -> None:
    assert _signed_account_call(sim, **{"ACCESS-PASSPHRASE": "guess"})["code"] == "40012"


def test_unknown_key_is_rejected_with_40006(sim: RunningSim) -> None:
    assert _signed_account_call(sim, **{"ACCESS-KEY": "someone-else"})["code"] == "40006"


def test_expired_timestamp_is_rejected_with_40008(sim: RunningSim) -> None:
    old = str(int(time.time() * 1000) - 60_000)
    query = "marginCoin=USDT&productType=USDT-FUTURES&symbol=BTCUSDT"
    headers = sim.headers("GET", ACCOUNT, query, timestamp=old)  # validly signed, but too old
    reply = sim.session.get(f"{sim.base_url}{ACCOUNT}?{query}", headers=headers, timeout=5)
    assert reply.json()["code"] == "40008"


def test_non_numeric_timestamp_is_rejected_with_40005(sim: RunningSim) -> None:
    assert _signed_account_call(sim, **{"ACCESS-TIMESTAMP": "yesterday"})["code"] == "40005"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("ACCESS-KEY", "40001"),
        ("ACCESS-SIGN", "40002"),
        ("ACCESS-TIMESTAMP", "40003"),
        ("ACCESS-PASSPHRASE", "40011"),
    ],
)
def test_missing_auth_header_names_what_is_missing(sim: RunningSim, header: str, code: str) -> None:
    assert _signed_account_call(sim, **{header: "<drop>"})["code"] == code


def test_tampered_post_body_is_rejected(sim: RunningSim) -> None:
    path = "/api/v2/mix/account/set-leverage"
    signed_body = '{"symbol":"BTCUSDT","productType":"USDT-FUTURES","marginCoin":"USDT","leverage":"5"}'
    sent_body = signed_body.replace('"5"', '"50"')
    reply = sim.session.post(
        sim.base_url + path, data=sent_body, headers=sim.headers("POST", path, "", signed_body), timeout=5
    )
    assert reply.json()["code"] == "40009"
    assert sim.engine.settings("BTCUSDT").long_leverage == 20


def test_public_endpoints_need_no_signature_and_accept_paptrading(sim: RunningSim) -> None:
    reply = sim.session.get(
        sim.base_url + "/api/v2/mix/market/contracts",
        params={"productType": "usdt-futures", "symbol": "BTCUSDT"},
        headers={"paptrading": "1"},
        timeout=5,
    )
    assert reply.status_code == 200
    (row,) = reply.json()["data"]
    assert (row["pricePlace"], row["priceEndStep"], row["volumePlace"]) == ("1", "1", "3")
    assert (row["minTradeNum"], row["minTradeUSDT"], row["maxLever"]) == ("0.001", "5", "125")


def test_unsimulated_product_types_answer_empty_lists(sim: RunningSim) -> None:
    reply = sim.get(
        "/api/v2/mix/position/all-position", {"productType": "COIN-FUTURES", "marginCoin": "USDT"}
    )
    assert reply.json()["data"] == []
    bad = sim.get("/api/v2/mix/position/all-position", {"productType": "BANANAS", "marginCoin": "USDT"})
    assert bad.status_code == 400 and bad.json()["code"] == "40020"


def test_unknown_path_and_bad_json_get_clear_errors(sim: RunningSim) -> None:
    assert sim.get("/api/v2/mix/order/nope", {"productType": "USDT-FUTURES"}).json()["code"] == "40404"
    path = "/api/v2/mix/order/place-order"
    reply = sim.session.post(
        sim.base_url + path, data="{not json", headers=sim.headers("POST", path, "", "{not json"), timeout=5
    )
    assert reply.status_code == 400 and reply.json()["code"] == "40017"


def test_credentials_never_appear_in_reprs(sim: RunningSim) -> None:
    text = repr(sim.server) + repr(sim.credentials) + repr(sim)
    assert "sim-secret" not in text and "sim-pass" not in text
