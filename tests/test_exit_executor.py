"""The ExitExecutor alone (no actor): exits applied to the simulator through a real client and journal."""

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
from exchange.sim.testing import RunningSim, running_sim
from trading.execution import journal_state
from trading.exit_executor import ExitExecutor, ExitSettings
from trading.intents import ExitIntent, first_target_break_even
from trading.journal import IntentState, Journal

D = Decimal
CHANNEL = "executor"


@dataclass
class _Told:
    notices: list[tuple[str, str]] = field(default_factory=list)
    orders: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    def notify(self, kind: str, text: str) -> None:
        self.notices.append((kind, text))

    def order(self, leg: str, result: str) -> None:
        self.orders.append((leg, result))

    def failed(self, key: str, message: str) -> None:
        self.failures.append(message)

    def succeeded(self, key: str) -> None:
        pass


class _FollowUp:
    """The order side's follow-up, reduced to what an exit needs: an order's state by client id."""

    def __init__(self, client: BitgetClient, journal: Journal, told: _Told) -> None:
        self._client, self._journal, self._told = client, journal, told

    def resolve(self, client_oid: str, symbol: str) -> None:
        try:
            order = self._client.resolve_unknown(symbol, client_oid)
        except BitgetError:
            return
        if order is not None:
            self._journal.set_order_state(client_oid, journal_state(order), exchange_order_id=order.order_id,
                                          filled_size=order.filled_size)

    def clean_plans(self, symbol: str) -> None:
        self._told.cleaned.append(symbol)


@dataclass
class _Desk:
    sim: RunningSim
    client: BitgetClient
    journal: Journal
    told: _Told
    executor: ExitExecutor

    @property
    def engine(self) -> SimExchange:
        return self.sim.engine


@contextmanager
def _desk(tmp_path: Path) -> Iterator[_Desk]:
    with running_sim(engine=SimExchange(seed=1, equity=D("100000"), pos_mode="one_way_mode")) as sim:
        client = sim.client()
        journal = Journal(str(tmp_path / "journal.sqlite"))
        told = _Told()
        executor = ExitExecutor(journal=journal, client=client, notifier=told, metrics=told, failures=told,
                                follow_up=_FollowUp(client, journal, told),
                                settings=ExitSettings(pos_mode="one_way_mode", margin_mode="isolated"))
        try:
            yield _Desk(sim, client, journal, told, executor)
        finally:
            journal.close()


def _traded_long(desk: _Desk, size: str = "0.020") -> int:
    desk.client.place_order(OrderRequest(symbol="BTCUSDT", side="buy", size=D(size), order_type="market",
                                         margin_mode="isolated", client_oid="fl_test_entry"))
    return desk.journal.record_signal(CHANNEL, 1, {"kind": "entry"}, "traded", "test", symbol="BTCUSDT")


def _position(desk: _Desk) -> Decimal:
    position = desk.engine.position("BTCUSDT", "long")
    return position.size if position is not None else D(0)


def test_close_partial_closes_its_share_once_and_is_done(tmp_path: Path) -> None:
    with _desk(tmp_path) as desk:
        target = _traded_long(desk, "0.040")
        update = desk.journal.record_signal(CHANNEL, 2, {"kind": "update"}, "parsed", "", symbol="BTCUSDT")
        intent = ExitIntent(update_signal_id=update, target_signal_id=target, channel=CHANNEL, message_id=2, index=0,
                            symbol="BTCUSDT", hold_side="long", kind="close_partial", percent=D("50"))
        assert desk.journal.record_exit_intent(intent, "test")
        assert desk.executor.run_all() is False
        assert _position(desk) == D("0.020")
        row = desk.journal.exit(intent.key)
        assert row is not None and row.state is IntentState.DONE
        assert desk.executor.run_all() is False and _position(desk) == D("0.020"), "never twice"
        assert desk.told.cleaned == ["BTCUSDT"] and ("close", "accepted") in desk.told.orders


def test_a_guard_break_even_move_places_the_new_stop_and_is_done(tmp_path: Path) -> None:
    with _desk(tmp_path) as desk:
        target = _traded_long(desk)
        desk.engine.set_price("BTCUSDT", desk.engine.price("BTCUSDT") * D("1.01"))
        move = first_target_break_even(target, channel=CHANNEL, message_id=1, index=0, symbol="BTCUSDT",
                                       hold_side="long")
        assert desk.journal.record_exit_intent(move, "first target filled")
        assert desk.executor.run_all() is False
        stops = [p for p in desk.engine.plan_orders("BTCUSDT") if p.plan_type == "pos_loss"]
        assert len(stops) == 1 and stops[0].client_oid == move.client_oid("xs")
        row = desk.journal.exit(move.key)
        assert row is not None and row.state is IntentState.DONE
        assert desk.told.notices == []


def test_an_exit_for_a_signal_not_placed_yet_waits(tmp_path: Path) -> None:
    with _desk(tmp_path) as desk:
        target = desk.journal.record_signal(CHANNEL, 1, {"kind": "entry"}, "approved", "test", symbol="BTCUSDT")
        update = desk.journal.record_signal(CHANNEL, 2, {"kind": "update"}, "parsed", "", symbol="BTCUSDT")
        intent = ExitIntent(update_signal_id=update, target_signal_id=target, channel=CHANNEL, message_id=2, index=0,
                            symbol="BTCUSDT", hold_side="long", kind="close_all")
        assert desk.journal.record_exit_intent(intent, "test")
        assert desk.executor.run_all() is True
        row = desk.journal.exit(intent.key)
        assert row is not None and row.state is IntentState.PENDING
