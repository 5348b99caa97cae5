"""The real OrderManager actor alone against a loopback simulator (no listener, parser or guard).

For order-side tests and benchmarks that need control over exactly what is sent and when: a test builds
an approved entry, tells the OrderManager a ``PlaceBundle`` like the RiskGate does, and watches the
simulator's own state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka

from actors.base import TradingGate
from actors.messages import PlaceBundle
from actors.order_manager import OrderManager, OrderManagerSettings
from exchange.bitget.client import BitgetClient
from exchange.bitget.contracts import Contract
from exchange.sim.engine import SimExchange
from exchange.sim.testing import RunningSim, running_sim
from ops.metrics import Metrics
from ops.notify import Notice, Notifier
from ops.status import RuntimeStatus
from parsing.signals import Side
from runtime.config import NotifyConfig
from trading.bundle import plan_bundle
from trading.intents import entry_intent
from trading.journal import Journal, OrderRow
from trading.risk import SizedEntry

CHANNEL = "order_side"
SETTINGS_FIELDS = {f.name for f in fields(OrderManagerSettings)}
D = Decimal


@dataclass
class OrderSide:
    sim: RunningSim
    client: BitgetClient
    journal: Journal
    status: RuntimeStatus
    pos_mode: str
    manager_args: dict[str, Any]
    notices: list[Notice] = field(default_factory=list)
    ref: pykka.ActorRef[Any] | None = None
    _next_message_id: int = 100

    @property
    def engine(self) -> SimExchange:
        return self.sim.engine

    # --- the actor -----------------------------------------------------------------------------------------
    def start_manager(self, **overrides: Any) -> None:
        args = {**self.manager_args, **overrides}
        settings = OrderManagerSettings(**{name: args.pop(name) for name in list(args) if name in SETTINGS_FIELDS})
        self.ref = OrderManager.start(name="order_manager", supervisor=None, settings=settings, **args)

    def stop_manager(self) -> None:
        if self.ref is not None and self.ref.is_alive():
            self.ref.stop(timeout=10)
        self.ref = None

    def restart_manager(self, **overrides: Any) -> None:
        """A new instance on the same journal and exchange, as the Supervisor would start after a crash."""
        self.stop_manager()
        self.start_manager(**overrides)

    # --- signals -------------------------------------------------------------------------------------------
    def entry(self, side: Side, *, size: str, symbol: str = "BTCUSDT", market: bool = False,
              tp_percentages: tuple[str, ...] = (), targets: int = 3, zone_pct: tuple[str, str] | None = None,
              zone_split: int = 1, message_id: int | None = None) -> PlaceBundle:
        """An approved entry as the RiskGate would send it: stop 1% away, targets 1%, 2%, 3% away. A limit
        entry is priced 0.1% through the market, so it is marketable and fills at once (partly if asked).
        ``zone_pct`` = (near, far): a zone that many percent on the favourable side of the market (resting
        limits, split over ``zone_split`` legs), the stop 1% beyond its far end."""
        contract = self.engine.contract(symbol)
        price = self.engine.price(symbol)
        sign = D(1) if side is Side.LONG else D(-1)
        if zone_pct is None:
            entries = (contract.round_price(price * (1 + sign * D("0.001"))),)
            stop_distance = D("0.01")
        else:
            entries = tuple(contract.round_price(price * (1 - sign * D(pct) / 100)) for pct in zone_pct)
            stop_distance = D(zone_pct[1]) / 100 + D("0.01")
        entry = entries[0]
        stop = contract.round_price(price * (1 - sign * stop_distance))
        tps = tuple(contract.round_price(price * (1 + sign * D(n) / 100)) for n in range(1, targets + 1))
        if message_id is None:
            self._next_message_id += 1
            message_id = self._next_message_id
        sized = SizedEntry(
            symbol=symbol, side=side, size=D(size), entry_prices=(price,) if market else entries, market=market,
            stop_loss=stop, take_profits=tps, tp_percentages=tuple(D(p) for p in tp_percentages), leverage=5,
            margin_mode="isolated", sizing_price=entry, notional=D(size) * entry, margin=D(size) * entry / 5,
            risk_usdt=D(1),
        )
        signal_id = self.journal.record_signal(CHANNEL, message_id, {"stop_loss": str(stop)}, "parsed", "",
                                               symbol=symbol)
        bundle = plan_bundle(sized, channel=CHANNEL, message_id=message_id, pos_mode=self.pos_mode,
                             zone_split=zone_split, contract=contract)
        intent = entry_intent(signal_id, bundle, sized, channel=CHANNEL, message_id=message_id)
        assert self.journal.approve_entry(intent, "approved (test)")  # as the RiskGate approves it
        return PlaceBundle(intent)

    def send(self, bundle: PlaceBundle) -> None:
        assert self.ref is not None
        self.ref.tell(bundle)

    # --- what the journal and the simulator say ----------------------------------------------------------
    def entry_row(self, bundle: PlaceBundle) -> OrderRow:
        row = self.journal.order(bundle.intent.legs[0].client_oid)
        assert row is not None
        return row

    def entry_orders(self, symbol: str = "BTCUSDT") -> list[Any]:
        return [o for o in self.engine.orders(symbol) if not o.is_closing and o.order_source == "normal"]

    def position_size(self, hold_side: str, symbol: str = "BTCUSDT") -> Decimal:
        position = self.engine.position(symbol, hold_side)
        return position.size if position is not None else D(0)

    def stops(self, hold_side: str, symbol: str = "BTCUSDT") -> list[Any]:
        return [p for p in self.engine.plan_orders(symbol)
                if p.plan_type in ("loss_plan", "pos_loss") and p.hold_side == hold_side]

    def stop_cover(self, hold_side: str, symbol: str = "BTCUSDT") -> Decimal | None:
        """The size the live stops cover; None for a whole-position stop."""
        total = D(0)
        for plan in self.stops(hold_side, symbol):
            if plan.size is None:
                return None
            total += plan.size
        return total

    def take_profits(self, hold_side: str, symbol: str = "BTCUSDT") -> list[Any]:
        return sorted((p for p in self.engine.plan_orders(symbol)
                       if p.plan_type == "profit_plan" and p.hold_side == hold_side), key=lambda p: p.client_oid)


@contextmanager
def order_side(
    tmp_path: Path,
    *,
    pos_mode: str = "one_way_mode",
    attach_stop: bool = True,
    partial_fill_ratio: str | None = None,
    check_interval_s: float = 0.1,
    unknown_outcome_deadline_s: float = 30.0,
    client_timeout_s: float = 5.0,
    seed: int = 3,
    start: bool = True,
    contracts: tuple[Contract, ...] | None = None,
) -> Iterator[OrderSide]:
    engine = SimExchange(seed=seed, equity=D("100000"), pos_mode=pos_mode, partial_fill_ratio=partial_fill_ratio,
                         **({"contracts": contracts} if contracts is not None else {}))
    with running_sim(engine=engine) as sim:
        client = sim.client(timeout=client_timeout_s)
        journal = Journal(str(tmp_path / "journal.sqlite"))
        notifier = Notifier(NotifyConfig())
        status = RuntimeStatus()
        args: dict[str, Any] = dict(
            journal=journal, client=client, notifier=notifier, metrics=Metrics(), status=status, gate=TradingGate(),
            pos_mode=pos_mode, margin_mode="isolated", check_interval_s=check_interval_s,
            unknown_outcome_deadline_s=unknown_outcome_deadline_s, attach_stop=attach_stop,
            min_pass_interval_s=0.1,  # a lone simulator has no other poller sharing its limits
        )
        side = OrderSide(sim, client, journal, status, pos_mode, args)
        notifier.listeners.append(side.notices.append)
        try:
            if start:
                side.start_manager()
            yield side
        finally:
            side.stop_manager()
            journal.close()
