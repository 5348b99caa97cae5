"""Scripted and seeded faults: what an executor must survive, reproducible run after run."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from exchange.sim.engine import SimExchange
from exchange.sim.testing import RunningSim, running_sim

PT = {"productType": "USDT-FUTURES"}


class FrozenClock:
    """Rate-limit clock that only moves when told: bursts are deterministic."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=9, rate_limits=False) as running:
        yield running


def test_timeout_after_accept_really_creates_the_order(sim: RunningSim) -> None:
    sim.engine.faults.timeout_after_accept("place-order")  # connection closed without a reply
    with pytest.raises(requests.ConnectionError):
        sim.place_order(symbol="BTCUSDT", side="buy", size="0.001", clientOid="lost-reply")
    detail = sim.get("/api/v2/mix/order/detail", {**PT, "symbol": "BTCUSDT", "clientOid": "lost-reply"}).json()
    assert detail["data"]["state"] == "filled"
    # The retry with the same clientOid is refused as a duplicate: no double position.
    assert sim.place_order(symbol="BTCUSDT", side="buy", size="0.001", clientOid="lost-reply").json()["code"] == (
        "40786"
    )
    assert sim.engine.positions()[0].size == Decimal("0.001")


def test_delayed_reply_beyond_client_timeout_still_creates_the_order(sim: RunningSim) -> None:
    sim.engine.faults.timeout_after_accept("/api/v2/mix/order/place-order", delay_s=2.0)
    with pytest.raises(requests.Timeout):
        sim.place_order(symbol="ETHUSDT", side="sell", size="0.10", clientOid="slow", timeout=0.3)
    assert sim.engine.find_order(client_oid="slow").state == "filled"


def test_fail_next_answers_500_without_touching_the_engine(sim: RunningSim) -> None:
    sim.engine.faults.fail_next("place-order")
    reply = sim.place_order(symbol="BTCUSDT", side="buy", size="0.001")
    assert reply.status_code == 500 and reply.json()["data"] is None
    assert sim.engine.orders() == []
    assert sim.place_order(symbol="BTCUSDT", side="buy", size="0.001").status_code == 200


def test_reject_next_gives_the_scripted_business_error(sim: RunningSim) -> None:
    sim.engine.faults.reject_next("place-order", "40762", "The order amount exceeds the balance")
    reply = sim.place_order(symbol="BTCUSDT", side="buy", size="0.001")
    assert reply.status_code == 400
    assert reply.json()["code"] == "40762"
    assert sim.engine.orders() == []


def test_unsupported_endpoint_answers_a_clear_not_supported_error(sim: RunningSim) -> None:
    sim.engine.faults.unsupported("place-tpsl-order")
    body = {
        **PT,
        "symbol": "BTCUSDT",
        "marginCoin": "USDT",
        "planType": "pos_loss",
        "triggerPrice": "60000",
        "holdSide": "buy",
    }
    reply = sim.post("/api/v2/mix/order/place-tpsl-order", body)
    assert reply.status_code == 404
    assert "not supported" in reply.json()["msg"]


def test_latency_fault_delays_the_reply(sim: RunningSim) -> None:
    sim.engine.faults.latency("ticker", 2.0)
    with pytest.raises(requests.Timeout):
        sim.get("/api/v2/mix/market/ticker", {**PT, "symbol": "BTCUSDT"}, signed=False, timeout=0.3)
    sim.engine.faults.latency("ticker", 0)
    assert sim.get("/api/v2/mix/market/ticker", {**PT, "symbol": "BTCUSDT"}, signed=False).status_code == 200


def test_burst_beyond_the_endpoint_limit_gets_429() -> None:
    clock = FrozenClock()
    with running_sim(seed=1, clock=clock) as sim:
        query = {**PT, "marginCoin": "USDT"}
        statuses = [sim.get("/api/v2/mix/position/all-position", query).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2  # all-position: 5/s/UID
        assert sim.get("/api/v2/mix/position/all-position", query).json()["code"] == "429"
        # Limits are per endpoint: another endpoint is still open.
        assert sim.get("/api/v2/mix/account/accounts", PT).status_code == 200
        clock.now += 1.0
        assert sim.get("/api/v2/mix/position/all-position", query).status_code == 200
        assert len(sim.engine.requests_to("all-position")) == 9


def test_stale_prices_freeze_the_published_ticker_while_matching_continues(sim: RunningSim) -> None:
    sim.engine.set_price("BTCUSDT", "65000")
    sim.engine.faults.stale_prices()
    sim.engine.set_price("BTCUSDT", "66000")
    ticker = sim.get("/api/v2/mix/market/ticker", {**PT, "symbol": "BTCUSDT"}, signed=False).json()["data"][0]
    assert ticker["lastPr"] == "65000"
    assert sim.engine.price("BTCUSDT") == Decimal("66000")
    sim.engine.faults.stale_prices(False)
    ticker = sim.get("/api/v2/mix/market/ticker", {**PT, "symbol": "BTCUSDT"}, signed=False).json()["data"][0]
    assert ticker["lastPr"] == "66000"


def test_jump_price_gaps_through_a_stop(sim: RunningSim) -> None:
    sim.engine.set_price("BTCUSDT", "65000")
    sim.place_order(symbol="BTCUSDT", side="buy", size="0.01", presetStopLossPrice="64000")
    sim.engine.faults.jump_price("BTCUSDT", -10)
    assert sim.engine.positions() == []
    assert sim.engine.fills()[-1].price == Decimal("58500")


def _flaky_outcomes(seed: int) -> list[int]:
    with running_sim(seed=seed, rate_limits=False) as sim:
        sim.engine.faults.flaky("tickers", 0.5)
        return [sim.get("/api/v2/mix/market/tickers", PT, signed=False).status_code for _ in range(12)]


def test_seeded_faults_and_prices_are_reproducible() -> None:
    first, second = _flaky_outcomes(11), _flaky_outcomes(11)
    assert first == second and {200, 500} <= set(first)
    walks = []
    for _ in range(2):
        engine = SimExchange(seed=11)
        engine.step(20)
        walks.append(engine.mark_prices())
    assert walks[0] == walks[1]
    other = SimExchange(seed=12)
    other.step(20)
    assert other.mark_prices() != walks[0]


def test_base_latency_delays_every_endpoint_and_survives_clear(sim: RunningSim) -> None:
    """``following sim --latency-ms``: every request waits, like a network round trip away."""
    sim.engine.faults.base_latency(2.0)
    sim.engine.faults.clear()  # a setting of the simulated network, not a fault: clear() keeps it
    with pytest.raises(requests.Timeout):
        sim.get("/api/v2/mix/market/ticker", {**PT, "symbol": "BTCUSDT"}, signed=False, timeout=0.3)
    with pytest.raises(requests.Timeout):
        sim.get("/api/v2/mix/account/accounts", PT, timeout=0.3)
    sim.engine.faults.base_latency(0)
    assert sim.get("/api/v2/mix/market/ticker", {**PT, "symbol": "BTCUSDT"}, signed=False).status_code == 200
