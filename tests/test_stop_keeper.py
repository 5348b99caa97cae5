"""The StopKeeper alone (no actor): stops repaired and moved on the simulator, the new one before the old goes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from exchange.bitget.client import BitgetClient
from exchange.bitget.models import OrderRequest, PositionSide
from exchange.sim.engine import SimExchange
from exchange.sim.testing import running_sim
from trading.bundle import break_even_stop
from trading.execution import action_client_oid
from trading.journal import Journal, OrderState
from trading.reconcile import position_key
from trading.stop_intents import StopIntents, StopWanted
from trading.stop_keeper import BREAK_EVEN_RETRIES, StopKeeper, StopSettings

D = Decimal


@dataclass
class _Told:
    notices: list[str] = field(default_factory=list)

    def notify(self, kind: str, text: str) -> None:
        self.notices.append(kind)

    def order(self, leg: str, result: str) -> None:
        pass


@dataclass(frozen=True)
class _Move:
    symbol: str
    hold_side: PositionSide
    reason: str


@contextmanager
def _keeper(tmp_path: Path) -> Iterator[tuple[SimExchange, Journal, _Told, StopKeeper, BitgetClient]]:
    with running_sim(engine=SimExchange(seed=5, equity=D("100000"), pos_mode="one_way_mode")) as sim:
        client = sim.client()
        journal = Journal(str(tmp_path / "journal.sqlite"))
        told = _Told()
        keeper = StopKeeper(journal=journal, client=client, notifier=told, metrics=told, intents=dict,
                            settings=StopSettings(pos_mode="one_way_mode", break_even_buffer=D("0.001")))
        client.place_order(OrderRequest(symbol="BTCUSDT", side="buy", size=D("0.020"), order_type="market",
                                        margin_mode="isolated", client_oid="fl_keeper_entry"))
        try:
            yield sim.engine, journal, told, keeper, client
        finally:
            journal.close()


def _stops(engine: SimExchange) -> list[Decimal]:
    return [p.trigger_price for p in engine.plan_orders("BTCUSDT") if p.plan_type in ("pos_loss", "loss_plan")]


def test_a_position_without_a_stop_gets_the_default_one(tmp_path: Path) -> None:
    with _keeper(tmp_path) as (engine, journal, _told, keeper, _client):
        keeper.repair("BTCUSDT", "long", "no stop seen")
        (stop,) = _stops(engine)
        assert stop < engine.position("BTCUSDT", "long").average_price
        assert journal.events("STOP_REPAIRED")
        keeper.repair("BTCUSDT", "long", "no stop seen")  # covered now: nothing more
        assert len(_stops(engine)) == 1


def test_break_even_replaces_the_old_stop(tmp_path: Path) -> None:
    with _keeper(tmp_path) as (engine, journal, _told, keeper, _client):
        position = engine.position("BTCUSDT", "long")
        keeper.repair("BTCUSDT", "long", "first stop")
        engine.set_price("BTCUSDT", engine.price("BTCUSDT") * D("1.01"))
        assert keeper.move_to_break_even(_Move("BTCUSDT", "long", "first target filled")) is None
        expected = break_even_stop(position.average_price, "long", D("0.001"), engine.contract("BTCUSDT"))
        assert _stops(engine) == [expected]
        assert journal.events("STOP_MOVED")


def test_a_refused_break_even_is_asked_again_then_given_up_and_told(tmp_path: Path) -> None:
    with _keeper(tmp_path) as (engine, journal, told, keeper, _client):
        engine.set_price("BTCUSDT", engine.price("BTCUSDT") * D("1.01"))
        engine.faults.reject_next("place-tpsl-order", "40000", "refused", times=BREAK_EVEN_RETRIES + 1)
        move = _Move("BTCUSDT", "long", "first target filled")
        delays = [keeper.move_to_break_even(move) for _ in range(BREAK_EVEN_RETRIES + 1)]
        assert all(d is not None and d > 0 for d in delays[:-1]) and delays[-1] is None
        assert len(journal.events("BREAK_EVEN_RETRY")) == BREAK_EVEN_RETRIES
        assert told.notices == ["STOP_NOT_MOVED"] and not keeper.retrying("BTCUSDT", "long")


def test_a_move_journaled_and_never_sent_before_a_crash_is_completed_once_on_resume(tmp_path: Path) -> None:
    with _keeper(tmp_path) as (engine, journal, told, keeper, client):
        keeper.repair("BTCUSDT", "long", "first stop")
        (first,) = _stops(engine)
        engine.set_price("BTCUSDT", engine.price("BTCUSDT") * D("1.01"))
        (position,) = client.position("BTCUSDT")
        stop = break_even_stop(position.average_open_price, "long", D("0.001"), engine.contract("BTCUSDT"))
        oid = action_client_oid("stop", "move", position_key(position), 1)
        wanted = StopWanted(symbol="BTCUSDT", hold_side="long", tpsl_hold="buy", trigger_price=stop, size=None,
                            position_size=position.total)
        # The crash: the new stop is journaled, nothing is sent, the old stop is still there.
        assert StopIntents(journal=journal, client=client, notifier=told, metrics=told).journal(
            wanted, oid, signal_id=None, purpose="move", stop_for=position_key(position), attempt=1,
            reason="first target filled", extra={"break_even": True})
        keeper.resume()
        assert _stops(engine) == [stop] and first != stop
        row = journal.order(oid)
        assert row is not None and row.state is OrderState.ACCEPTED
        (moved,) = journal.events("STOP_MOVED")
        assert moved.detail["break_even"] is True
        keeper.resume()
        assert _stops(engine) == [stop] and len(journal.events("STOP_MOVED")) == 1
