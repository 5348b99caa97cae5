"""OrderSender and Closer alone (no actor): orders journaled, sent to the simulator and followed up by client id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import BitgetError
from exchange.bitget.models import OrderRequest
from exchange.sim.engine import SimExchange
from exchange.sim.testing import running_sim
from trading.bundle import LegPlan
from trading.execution import journal_state
from trading.journal import Journal, OrderState
from trading.order_sender import Closer, OrderSender

D = Decimal


@dataclass
class _Told:
    client: BitgetClient
    journal: Journal
    allowed: bool = True
    notices: list[str] = field(default_factory=list)

    def notify(self, kind: str, text: str) -> None:
        self.notices.append(kind)

    def order(self, leg: str, result: str) -> None:
        pass

    def resolve(self, client_oid: str, symbol: str) -> None:
        try:
            order = self.client.resolve_unknown(symbol, client_oid)
        except BitgetError:
            return
        if order is not None:
            self.journal.set_order_state(client_oid, journal_state(order), exchange_order_id=order.order_id,
                                         filled_size=order.filled_size)


@contextmanager
def _desk(tmp_path: Path) -> Iterator[tuple[SimExchange, _Told, OrderSender, Closer]]:
    with running_sim(engine=SimExchange(seed=4, equity=D("100000"), pos_mode="one_way_mode")) as sim:
        journal = Journal(str(tmp_path / "journal.sqlite"))
        told = _Told(sim.client(), journal)
        sender = OrderSender(journal=journal, client=told.client, notifier=told, metrics=told, follow_up=told,
                             entries_allowed=lambda: told.allowed, margin_mode="isolated", preset_stop=False)
        closer = Closer(journal=journal, client=told.client, notifier=told, metrics=told, sender=sender,
                        follow_up=told, pos_mode="one_way_mode")
        try:
            yield sim.engine, told, sender, closer
        finally:
            journal.close()


def _leg(oid: str) -> LegPlan:
    return LegPlan(symbol="BTCUSDT", leg="entry", side="buy", trade_side=None, order_type="market", size=D("0.020"),
                   price=None, reduce_only=False, client_oid=oid, preset_stop_loss_price=None)


def test_an_entry_is_journaled_sent_once_and_filled(tmp_path: Path) -> None:
    with _desk(tmp_path) as (engine, told, sender, _closer):
        sender.submit(_leg("fl_sender_entry"), None, payload={})
        sender.submit(_leg("fl_sender_entry"), None, payload={})  # journaled already: never sent again
        row = told.journal.order("fl_sender_entry")
        assert row is not None and row.state is OrderState.FILLED
        assert len([o for o in engine.orders("BTCUSDT") if not o.is_closing]) == 1


def test_an_entry_is_not_sent_once_entries_are_stopped(tmp_path: Path) -> None:
    with _desk(tmp_path) as (engine, told, sender, _closer):
        told.allowed = False
        sender.submit(_leg("fl_sender_stopped"), None, payload={})
        row = told.journal.order("fl_sender_stopped")
        assert row is not None and row.state is OrderState.REJECTED
        assert engine.orders("BTCUSDT") == []


def test_a_protective_close_closes_the_whole_position_and_is_told(tmp_path: Path) -> None:
    with _desk(tmp_path) as (engine, told, _sender, closer):
        told.client.place_order(OrderRequest(symbol="BTCUSDT", side="buy", size=D("0.030"), order_type="market",
                                             margin_mode="isolated", client_oid="fl_someentry"))
        closer.protective_close("BTCUSDT", "long", "stop repair failed")
        assert engine.position("BTCUSDT", "long") is None or engine.position("BTCUSDT", "long").size == 0
        (row,) = [r for r in told.journal.orders(symbol="BTCUSDT") if r.leg == "close"]
        assert row.state is OrderState.FILLED and row.payload["cause"] == "protective"
        assert told.notices == ["PROTECTIVE_CLOSE"]
