"""The simulator's /_sim/ admin endpoints: how a harness in another process reads and scripts the exchange."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from benchmarks.chaos.sim_admin import SimAdmin
from exchange.sim.testing import RunningSim, running_sim


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=3, rate_limits=False, admin=True) as running:
        yield running


def test_admin_endpoints_are_off_unless_asked_for() -> None:
    with running_sim(seed=3) as plain:
        assert requests.get(plain.base_url + "/_sim/state", timeout=5).status_code == 404


def test_state_shows_orders_plans_and_positions_as_the_exchange_holds_them(sim: RunningSim) -> None:
    reply = sim.place_order(symbol="BTCUSDT", side="buy", size="0.01", clientOid="entry-1",
                            presetStopLossPrice="60000")
    assert reply.json()["code"] == "00000"
    admin = SimAdmin(sim.base_url)
    try:
        state = admin.state()
    finally:
        admin.close()
    assert [(o.client_oid, o.filled, o.closing) for o in state.orders] == [("entry-1", Decimal("0.01"), False)]
    assert state.position_size("BTCUSDT", "long") == Decimal("0.01")
    [stop] = state.live_plans("BTCUSDT")
    assert stop.is_stop and stop.trigger_price == Decimal("60000")
    assert state.last["BTCUSDT"] == sim.engine.price("BTCUSDT")


def test_faults_scripted_from_outside_hit_the_next_calls(sim: RunningSim) -> None:
    admin = SimAdmin(sim.base_url)
    try:
        admin.fail_next("place-order", http_status=429, code="429", times=1)
        assert sim.place_order(symbol="BTCUSDT", side="buy", size="0.01").status_code == 429
        assert sim.place_order(symbol="BTCUSDT", side="buy", size="0.01").status_code == 200
        admin.timeout_after_accept("place-order", delay_s=None)
        with pytest.raises(requests.ConnectionError):
            sim.place_order(symbol="BTCUSDT", side="buy", size="0.01", clientOid="held")
        next_index, calls = admin.requests_since(0)
        assert [c.accepted for c in calls if c.endpoint == "place-order"] == [False, True, True]
        assert calls[-1].params["clientOid"] == "held" and next_index == len(calls)
        assert admin.set_price("ETHUSDT", Decimal("3000.004")) == Decimal("3000.00")
        assert sim.engine.price("ETHUSDT") == Decimal("3000.00")
    finally:
        admin.close()


def test_bad_admin_calls_are_refused_with_a_reason(sim: RunningSim) -> None:
    reply = requests.post(sim.base_url + "/_sim/faults", json={"op": "explode"}, timeout=5)
    assert reply.status_code == 400 and "unknown op" in reply.json()["error"]
    reply = requests.post(sim.base_url + "/_sim/price", json={"symbol": "NOPEUSDT", "price": "1"}, timeout=5)
    assert reply.status_code == 400


def test_plans_can_survive_a_flat_position(sim: RunningSim) -> None:
    """With plans_survive_flat the exchange leaves a closed position's TP/SL plans: cleaning up is the client's."""
    sim.engine.faults.plans_survive_flat(True)
    sim.place_order(symbol="BTCUSDT", side="buy", size="0.01", presetStopLossPrice="60000")
    sim.place_order(symbol="BTCUSDT", side="sell", size="0.01", reduceOnly="YES")
    assert sim.engine.positions("BTCUSDT") == []
    assert [p.status for p in sim.engine.plan_orders("BTCUSDT")] == ["live"]
    sim.engine.faults.clear()  # a behaviour setting, not a fault: clear() keeps it
    assert sim.engine.faults.plans_survive_flat_enabled()


def test_plans_go_with_the_position_by_default(sim: RunningSim) -> None:
    sim.place_order(symbol="BTCUSDT", side="buy", size="0.01", presetStopLossPrice="60000")
    sim.place_order(symbol="BTCUSDT", side="sell", size="0.01", reduceOnly="YES")
    assert sim.engine.plan_orders("BTCUSDT") == []
