"""BitgetClient against the loopback Bitget simulator: real HTTP, real signing, real envelopes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import DuplicateClientOid, ExchangeUnavailable, InvalidParameter, UnknownOutcome
from exchange.bitget.models import OrderRequest, TpslRequest
from exchange.bitget.ratelimit import Backoff, RateLimiter
from exchange.bitget.semantics import order_fields, tpsl_hold_side

sim_testing = pytest.importorskip("exchange.sim.testing")


@pytest.fixture
def sim() -> Iterator[object]:
    with sim_testing.running_sim(seed=3) as running:
        running.engine.set_price("BTCUSDT", 65000)
        yield running


@pytest.fixture
def client(sim: object) -> BitgetClient:
    return sim.client(  # type: ignore[attr-defined]
        timeout=3.0,
        rate_limiter=RateLimiter(sleep=lambda s: None),
        backoff=Backoff(sleep=lambda s: None),
        sleep=lambda s: None,
    )


def order(side: str, trade_side: str | None, reduce_only: bool, client_oid: str) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDT",
        side=side,  # type: ignore[arg-type]
        size=Decimal("0.010"),
        order_type="market",
        trade_side=trade_side,  # type: ignore[arg-type]
        reduce_only=reduce_only,
        client_oid=client_oid,
        margin_mode="crossed",
    )


@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
def test_open_protect_and_close_a_long(client: BitgetClient, pos_mode: str) -> None:
    assert client.set_position_mode(pos_mode) == pos_mode
    assert client.position_mode("BTCUSDT") == pos_mode
    client.contracts()

    placed = client.place_order(order(*order_fields("long", pos_mode, closing=False), client_oid="open-1"))
    (position,) = client.position("BTCUSDT")
    assert position.hold_side == "long" and position.total == Decimal("0.010")
    assert client.order_detail("BTCUSDT", client_oid="open-1").order_id == placed.order_id

    stop = TpslRequest(
        symbol="BTCUSDT",
        plan_type="pos_loss",
        trigger_price=Decimal("60000.0"),
        hold_side=tpsl_hold_side("long", pos_mode),  # type: ignore[arg-type]
        client_oid="sl-1",
    )
    client.place_tpsl_order(stop)
    assert [p.client_oid for p in client.plan_orders_pending("profit_loss", "BTCUSDT")] == ["sl-1"]
    client.modify_tpsl_order("BTCUSDT", client_oid="sl-1", trigger_price=Decimal("61000.0"))
    (moved,) = client.plan_orders_pending("profit_loss", "BTCUSDT")
    assert moved.trigger_price == Decimal("61000.0")

    client.place_order(order(*order_fields("long", pos_mode, closing=True), client_oid="close-1"))
    assert client.position("BTCUSDT") == []
    assert client.positions() == []
    fills = client.fills("BTCUSDT")
    assert {f.order_id for f in fills} >= {placed.order_id}


def test_unknown_outcome_then_resolve_by_client_id(client: BitgetClient, sim: object) -> None:
    sim.engine.faults.timeout_after_accept("/api/v2/mix/order/place-order")  # type: ignore[attr-defined]
    request = order("buy", None, False, "maybe-1")
    with pytest.raises(UnknownOutcome):
        client.place_order(request)
    found = client.resolve_unknown("BTCUSDT", "maybe-1")
    assert found is not None and found.state == "filled"
    assert client.resolve_unknown("BTCUSDT", "never-sent") is None
    with pytest.raises(DuplicateClientOid):
        client.place_order(request)  # re-sending the same intent is refused, not doubled


def test_reads_survive_a_transient_5xx(client: BitgetClient, sim: object) -> None:
    sim.engine.faults.fail_next("/api/v2/mix/position/all-position", http_status=503)  # type: ignore[attr-defined]
    assert client.positions() == []
    sim.engine.faults.fail_next("/api/v2/mix/position/all-position", times=5)  # type: ignore[attr-defined]
    with pytest.raises(ExchangeUnavailable):
        client.positions()


def test_account_ticker_and_contract_checks(client: BitgetClient) -> None:
    account = client.account()
    assert account.equity > 0 and account.margin_coin == "USDT"
    ticker = client.ticker("BTCUSDT")
    assert ticker.last == Decimal("65000.0")
    contract = client.contract("BTCUSDT")
    off_step = OrderRequest(symbol="BTCUSDT", side="buy", size=contract.size_step / 2, order_type="market")
    with pytest.raises(InvalidParameter):
        client.place_order(off_step)
