"""The ReconciliationApplier alone (no actor): passes applied to the simulator through a real client and journal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from exchange.bitget.client import BitgetClient
from exchange.bitget.models import OrderRequest, Position, TpslRequest
from exchange.sim.engine import SimExchange
from exchange.sim.testing import running_sim
from trading.facts import FactStore
from trading.journal import Journal, OrderState
from trading.reconciliation_applier import ReconcileSettings, ReconciliationApplier

D = Decimal


@dataclass
class _Told:
    notices: list[tuple[str, str]] = field(default_factory=list)
    closes: list[tuple[str, Decimal, str]] = field(default_factory=list)
    later: list[str] = field(default_factory=list)

    def notify(self, kind: str, text: str) -> None:
        self.notices.append((kind, text))

    def order(self, leg: str, result: str) -> None:
        pass

    def close(self, position: Position, size: Decimal, reason: str) -> None:
        self.closes.append((position.symbol, size, reason))

    def protect_later(self, symbol: str, delay_s: float) -> None:
        self.later.append(symbol)


@contextmanager
def _applier(tmp_path: Path) -> Iterator[tuple[SimExchange, BitgetClient, Journal, _Told, ReconciliationApplier]]:
    with running_sim(engine=SimExchange(seed=2, equity=D("100000"), pos_mode="one_way_mode")) as sim:
        client = sim.client()
        journal = Journal(str(tmp_path / "journal.sqlite"))
        told = _Told()
        applier = ReconciliationApplier(
            journal=journal, client=client, notifier=told, metrics=told, facts=FactStore(),
            settings=ReconcileSettings(pos_mode="one_way_mode", unknown_outcome_deadline_s=30.0),
            close_position=told.close, protect_later=told.protect_later)
        try:
            yield sim.engine, client, journal, told, applier
        finally:
            journal.close()


def test_a_sent_order_is_resolved_by_its_client_id(tmp_path: Path) -> None:
    with _applier(tmp_path) as (_engine, client, journal, _told, applier):
        oid = "fl_resolvetest_close"
        assert journal.record_intent(oid, signal_id=None, symbol="BTCUSDT", leg="entry", side="buy", trade_side=None,
                                     order_type="market", size=D("0.010"), price=None, reduce_only=False, payload={})
        journal.set_order_state(oid, OrderState.SUBMITTED)
        client.place_order(OrderRequest(symbol="BTCUSDT", side="buy", size=D("0.010"), order_type="market",
                                        margin_mode="isolated", client_oid=oid))
        applier.resolve(oid, "BTCUSDT")
        row = journal.order(oid)
        assert row is not None and row.state is OrderState.FILLED and row.filled_size == D("0.010")


def test_a_pass_reports_an_external_position_once_and_cancels_our_plan_left_on_a_flat_symbol(tmp_path: Path) -> None:
    with _applier(tmp_path) as (engine, client, journal, told, applier):
        client.place_order(OrderRequest(symbol="ETHUSDT", side="buy", size=D("0.10"), order_type="market",
                                        margin_mode="isolated", client_oid="someone_else"))
        client.place_order(OrderRequest(symbol="BTCUSDT", side="buy", size=D("0.010"), order_type="market",
                                        margin_mode="isolated", client_oid="fl_flat_entry"))
        client.place_tpsl_order(TpslRequest(symbol="BTCUSDT", plan_type="loss_plan", size=D("0.010"),
                                            trigger_price=engine.price("BTCUSDT") * D("0.9"), hold_side="buy",
                                            client_oid="fl_orphan_sl"))
        engine.faults.plans_survive_flat()
        client.place_order(OrderRequest(symbol="BTCUSDT", side="sell", size=D("0.010"), order_type="market",
                                        margin_mode="isolated", client_oid="fl_flat_close", reduce_only=True))
        for _ in range(2):
            applier.apply(applier.gather())
            applier.clean_after_pass()
        assert [kind for kind, _text in told.notices].count("EXTERNAL_POSITION") == 1
        assert not [p for p in engine.plan_orders("BTCUSDT") if p.client_oid == "fl_orphan_sl"]
        assert journal.events("PLAN_CANCELLED")
