"""PositionGuard: the account poller and the risk daemon.

It polls the account (equity, available margin), the positions with their stop plans, and the open orders,
each at its own interval, and exports each as a metric; a failed poll is counted and retried next time.
On every positions poll it enforces "every position has a stop": a position found without one gets a repair
at once, and if it is still unprotected past the repair timeout it is closed and the system goes to safe
mode. It also alerts (once) and reduces a position whose liquidation price comes near, and moves the stop to
break-even once the first target has filled. The account poll feeds the drawdown breaker.

With local_guard the stops are not on the exchange: each position's stop is a journal flag (set here when the
position is first seen, moved by the OrderManager), and every price tick from the PriceFeed is checked against
it; a crossing sends one protective close (retried while the position stays open).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.base import SupervisedActor
from actors.messages import (
    ExecuteExit,
    ModeChanged,
    PriceTick,
    ProtectiveClose,
    ReducePosition,
    RepairStop,
    Tick,
    WatchSymbol,
)
from actors.ports import ExchangeFacts, GuardExchange, Notices, Recipient, StatusBoard
from exchange.bitget.errors import BitgetError
from exchange.bitget.models import PlanOrder, Position, PosMode, as_position_side
from ops.metrics import Metrics
from ops.repeats import RepeatedFailures
from runtime.config import Config
from trading.execution import default_stop
from trading.guard import (
    LiquidationWatch,
    LocalStopLatch,
    LocalStopVerdict,
    PatienceClock,
    StopBreachWatch,
    StopWatch,
    breached_stop,
    first_target_taken,
    guarding_stops,
    liquidation_distance,
    local_stop,
    local_stop_flag,
    local_stop_verdict,
    position_has_stop,
    set_local_stop,
    stop_rounding,
)
from trading.intents import first_target_break_even
from trading.journal import Journal, JournalError, OrderState
from trading.modes import Mode
from trading.reconcile import intents_from_journal
from trading.risk import drawdown_breached, update_peak
from trading.shared_listings import Listings, SharedListings, WriteMark

log = logging.getLogger("following.guard")

_LOCAL_STOP_RETRY_S = 1.0  # a local-stop close that did not flatten the position is sent again, not sooner
PEAK_FLAG = "peak_equity"  # the highest equity seen; survives restarts so the drawdown breaker does too


@dataclass(frozen=True)
class PositionGuardSettings:
    """How often the PositionGuard looks, and the limits it holds positions to."""

    pos_mode: PosMode
    positions_interval_s: float
    account_interval_s: float
    repair_timeout_s: float
    max_drawdown_pct: Decimal
    min_liquidation_distance_pct: Decimal
    local_guard: bool = False  # the stops are the bot's own, fired from the price feed's ticks
    orders_interval_s: float | None = None
    stop_deadline_s: float | None = None
    liquidation_reduce_fraction: Decimal = Decimal("0.25")
    plan_orders_supported: bool = True
    default_stop_loss_pct: Decimal = Decimal("0.006")
    price_stale_after_s: float = 10.0
    stop_breach_grace_s: float = 5.0

    @classmethod
    def from_config(cls, config: Config, *, local_guard: bool, plan_orders_supported: bool) -> PositionGuardSettings:
        intervals, stop = config.monitor.poll_intervals, config.risk.stoploss
        return cls(
            pos_mode=config.bitget.position_mode, positions_interval_s=intervals.positions_seconds,
            account_interval_s=intervals.account_seconds, repair_timeout_s=stop.repair_timeout_seconds,
            max_drawdown_pct=config.risk.max_account_drawdown_pct,
            min_liquidation_distance_pct=config.monitor.min_liquidation_distance_pct, local_guard=local_guard,
            orders_interval_s=intervals.open_orders_seconds, stop_deadline_s=stop.stop_deadline_seconds,
            liquidation_reduce_fraction=config.monitor.liquidation_reduce_fraction,
            plan_orders_supported=plan_orders_supported, default_stop_loss_pct=config.risk.default_stop_loss_pct,
            price_stale_after_s=config.monitor.price_feed.stale_after_seconds,
            stop_breach_grace_s=stop.stop_breach_grace_seconds,
        )


class PositionGuard(SupervisedActor):
    def __init__(
        self,
        *,
        name: str,
        supervisor: Recipient | None,
        mode: Mode = Mode.NORMAL,
        journal: Journal,
        client: GuardExchange,
        order_manager: Recipient,
        price_feed: Recipient,
        notifier: Notices,
        metrics: Metrics,
        status: StatusBoard,
        settings: PositionGuardSettings,
        facts: ExchangeFacts | None = None,
        listings: SharedListings | None = None,
    ) -> None:
        self._repeats = RepeatedFailures(log)  # an outage is said once, then counted
        super().__init__(name, supervisor, mode=mode)
        pos_mode, positions_interval_s, stop_deadline_s = (settings.pos_mode, settings.positions_interval_s,
                                                           settings.stop_deadline_s)
        repair_timeout_s, stop_breach_grace_s = settings.repair_timeout_s, settings.stop_breach_grace_s
        self._journal = journal
        self._client = client
        self._order_manager = order_manager
        self._price_feed = price_feed
        self._notifier = notifier
        self._metrics = metrics
        self._status = status
        self._pos_mode = pos_mode
        # A missing stop is noticed within half the stop deadline at worst, whatever the poll interval says.
        self._positions_interval_s = (
            min(positions_interval_s, stop_deadline_s / 2) if stop_deadline_s else positions_interval_s
        )
        self._account_interval_s = settings.account_interval_s
        self._orders_interval_s = settings.orders_interval_s
        self._max_dd = settings.max_drawdown_pct
        self._min_liq = settings.min_liquidation_distance_pct
        self._local_guard = settings.local_guard
        self._stops = StopWatch(repair_timeout_s)
        # A position that must be closed (panic, or its stop could not be repaired) but is still open after the
        # repair timeout is closed again: the first close was refused or lost.
        self._close_again = PatienceClock(repair_timeout_s)
        self._reduce_fraction = settings.liquidation_reduce_fraction
        self._liquidation = LiquidationWatch(self._min_liq, retry_after_s=3 * self._positions_interval_s)
        self._known_positions: set[tuple[str, str]] = set()
        self._positions: list[Position] = []
        # local_guard: the stop of each position is in the journal (see trading.guard.local_stop) and fires from
        # the price feed's ticks; plans are listed only when the exchange has them (for the first-target rule).
        self._plans_supported = settings.plan_orders_supported
        self._default_stop_pct = settings.default_stop_loss_pct
        self._price_stale_after_s = settings.price_stale_after_s
        self._prices: dict[str, tuple[float, PriceTick]] = {}  # symbol -> (received, monotonic; the tick)
        # Sent again only once a positions poll had time to show the first close's result.
        self._held_stops: dict[str, Decimal] = {}  # each position's local stop, also in memory (disk full)
        self._local_stops = LocalStopLatch(retry_s=max(_LOCAL_STOP_RETRY_S, 2 * self._positions_interval_s))
        # The mark past a position's stop (on the exchange, or the local one) for longer than the grace: the stop
        # did not fire; the position is closed by market, and the close repeated while it stays open.
        self._breach_grace_s = stop_breach_grace_s
        self._breaches = StopBreachWatch(stop_breach_grace_s,
                                         retry_s=max(_LOCAL_STOP_RETRY_S, 2 * self._positions_interval_s))
        self._plans: list[PlanOrder] = []
        self._facts = facts  # the RiskGate decides on these polls' account and positions while they are fresh
        # Each positions poll reads open orders and plans too and publishes the reading for the OrderManager's
        # reconciliation, which then need not read them again (trading.shared_listings).
        self._listings = listings
        # With them, the open orders are read with a positions poll at their own interval on average (the poll
        # nearest each due time: never more often), not on a timer of their own.
        self._orders_due_at = float("-inf")  # monotonic

    def on_started(self) -> None:
        self._status.set("positions_protected", False, "first position check pending")
        if self._local_guard:
            now = time.monotonic()
            for event in self._journal.events("LOCAL_STOP_TRIGGERED", limit=100_000):
                detail = event.detail
                hold_side = as_position_side(detail.get("hold_side"))
                if hold_side is not None:
                    self._local_stops.restore(local_stop_flag(str(detail["symbol"]), hold_side,
                                                              detail.get("c_time")), now)
        self._check_positions()
        self._check_account()
        self.schedule_every(self._positions_interval_s, Tick("positions"))
        self.schedule_every(self._account_interval_s, Tick("account"))
        if self._orders_interval_s is not None and self._listings is None:
            self._check_open_orders()
            self.schedule_every(self._orders_interval_s, Tick("orders"))

    def on_mode_changed(self, changed: ModeChanged) -> None:
        if changed.mode is Mode.NORMAL and changed.previous is not Mode.NORMAL:
            # Only an operator loosens the mode. The drawdown so far is acknowledged: measure from here, or the
            # breaker would trip again on the next poll and trading could never resume.
            previous_peak = self._journal.get_flag(PEAK_FLAG)
            self._set_flag(PEAK_FLAG, None)
            self._journal.record_event("PEAK_EQUITY_REBASED", {"previous_peak": previous_peak,
                                                               "reason": changed.reason})
            self._check_account()

    def handle(self, message: Any) -> Any:
        if isinstance(message, Tick):
            if message.what == "positions":
                self._check_positions()
            elif message.what == "account":
                self._check_account()
            elif message.what == "orders":
                self._check_open_orders()
        elif isinstance(message, PriceTick):
            if self._local_guard:
                self._on_price(message)
            else:
                self._prices[message.symbol] = (time.monotonic(), message)
            self._breach_on_tick(message)
        return None

    # --- positions ---------------------------------------------------------------------------------
    def _check_positions(self) -> None:
        started = time.monotonic()
        sent = time.time()  # the view is at least this recent (a fact's time is when it was asked for)
        writes = self._listings.writes.mark() if self._listings is not None and self._orders_due(started) else None
        try:
            positions = [p for p in self._client.positions() if p.total > 0]
            if self._facts is not None:
                self._facts.put_positions(tuple(positions), sent, "guard")
            if writes is not None:
                plans = self._read_shared_listings(positions, started, writes)
            else:
                plans = self._own_plans(positions)
        except BitgetError as exc:
            self._metrics.poll_error("positions")
            self._status.set("exchange", False, f"positions unreadable: {exc.code}")
            self._repeats.failed("positions poll", f"positions unreadable: {exc.code}")
            return
        finally:
            self._metrics.observe_poll("positions", time.monotonic() - started)
        self._status.set("exchange", True)
        self._repeats.succeeded("positions poll")
        self._positions = positions
        self._plans = list(plans)
        self._metrics.set_open_positions(len(positions))
        now = time.monotonic()
        unprotected = []
        stale: list[str] = []
        to_close: set[tuple[str, str]] = set()
        for position in positions:
            key = (position.symbol, position.hold_side)
            self._note_new_position(position, key)
            if self._local_guard:
                protected, price_known = self._guard_locally(position, now)
                if not price_known:
                    stale.append(position.symbol)
            else:
                protected = position_has_stop(position, plans, self._pos_mode)
            verdict = self._stops.observe(key, protected, now)
            if verdict != "ok":
                unprotected.append(key)
            if verdict in ("missing", "still_missing") and self._local_guard:
                if verdict == "missing":  # no local stop could be set (contract unreadable): tried every poll
                    self._journal.record_event("STOP_MISSING", {"symbol": position.symbol,
                                                                "hold_side": position.hold_side, "local": True})
            elif verdict == "missing":
                self._journal.record_event("STOP_MISSING", {"symbol": position.symbol,
                                                            "hold_side": position.hold_side})
                self._notifier.notify("STOP_MISSING", f"{position.symbol} {position.hold_side} has no stop; repairing")
                self._order_manager.tell(RepairStop(position.symbol, position.hold_side, position.total,
                                                    "stop missing"))
            elif verdict == "still_missing":
                self._order_manager.tell(RepairStop(position.symbol, position.hold_side, position.total,
                                                    "stop still missing"))
            elif verdict == "expired":
                self._journal.record_event("STOP_REPAIR_FAILED", {"symbol": position.symbol,
                                                                  "hold_side": position.hold_side})
                self._order_manager.tell(ProtectiveClose(position.symbol, position.hold_side,
                                                         "stop could not be repaired in time"))
                self.request_mode(Mode.SAFE, f"stop repair failed on {position.symbol}", "guard")
            self._check_breach(position, position.mark_price or self._tick_mark(position.symbol), now)
            self._check_liquidation(position, key, now)
            self._check_first_target(position, plans)
            if self.mode is Mode.PANIC or verdict == "closing":
                to_close.add(key)
                if self._close_again.due(key, now):  # reduce-only: a repeated close can never open anything
                    why = "panic" if self.mode is Mode.PANIC else "stop could not be repaired"
                    self._order_manager.tell(ProtectiveClose(position.symbol, position.hold_side,
                                                             f"{why}: still open"))
        live = {(p.symbol, p.hold_side) for p in positions}
        self._stops.forget_except(live)
        self._liquidation.forget_except(live)
        self._breaches.forget_except(live)
        breached = [f"{symbol} {side}" for symbol, side in self._breaches.breached()]
        self._close_again.forget_except(to_close)
        self._known_positions &= {(p.symbol, p.hold_side) for p in positions}
        self._local_stops.forget_except({_flag_key(p) for p in positions})
        if breached:
            self._status.set("positions_protected", False, f"past the stop, still open: {', '.join(breached)}")
        elif unprotected:
            self._status.set("positions_protected", False, f"{len(unprotected)} position(s) without a stop")
        elif stale:
            self._status.set("positions_protected", False, f"local stops without a fresh price: {sorted(set(stale))}")
        else:
            self._status.set("positions_protected", True)

    def _read_shared_listings(self, positions: list[Position], observed_at: float,
                              writes: WriteMark) -> list[PlanOrder]:
        """The rest of one complete reading for the OrderManager's reconciliation too (trading.shared_listings):
        open orders, then every pending plan it lists, published; returns the stop and take-profit plans the
        guard checks positions against. A listing only the OrderManager needs that fails is no reason to skip
        this poll's checks: nothing is published and the guard's own plans are read as before."""
        assert self._listings is not None
        asked = time.monotonic()
        try:
            pending = tuple(self._client.pending_orders())
        except BitgetError as exc:
            self._metrics.poll_error("orders")
            self._repeats.failed("open orders poll", f"open orders unreadable: {exc.code}")
            return self._own_plans(positions)
        finally:
            self._metrics.observe_poll("orders", time.monotonic() - asked)
        self._repeats.succeeded("open orders poll")
        self._metrics.set_open_orders(len(pending))
        self._orders_read(asked)
        try:
            tpsl = tuple(self._client.plan_orders_pending("profit_loss")) if self._plans_supported else ()
            triggers = tuple(self._client.plan_orders_pending("normal_plan")) if self._plans_supported else ()
        except BitgetError as exc:
            log.info("plans not read for the shared listings (%s); the order manager reads its own", exc.code)
            return self._own_plans(positions)
        self._listings.publish(Listings(positions=tuple(positions), pending=pending, plans=tpsl + triggers,
                                        observed_at=observed_at, writes=writes, source="guard"))
        return list(tpsl) if self._plans_supported else self._own_plans(positions)

    def _orders_due(self, now: float) -> bool:
        return now >= self._orders_due_at - self._positions_interval_s / 2

    def _orders_read(self, now: float) -> None:
        interval = self._orders_interval_s or self._positions_interval_s
        following = self._orders_due_at + interval
        self._orders_due_at = following if following > now else now + interval

    def _own_plans(self, positions: list[Position]) -> list[PlanOrder]:
        list_plans = positions and (self._plans_supported or not self._local_guard)
        return self._client.plan_orders_pending("profit_loss") if list_plans else []

    def _note_new_position(self, position: Position, key: tuple[str, str]) -> None:
        if key in self._known_positions:
            return
        self._known_positions.add(key)
        self._price_feed.tell(WatchSymbol(position.symbol))
        if not self._journal.open_signals(position.symbol) and not self._journal.orders(symbol=position.symbol):
            # Opened outside this bot: adopted (guarded like ours) and reported.
            self._journal.record_event("EXTERNAL_POSITION", {"symbol": position.symbol,
                                                             "hold_side": position.hold_side,
                                                             "size": str(position.total)})
            self._notifier.notify("EXTERNAL_POSITION", f"{position.symbol} {position.hold_side} {position.total} "
                                  "was not opened by this bot; guarding it")

    def _check_liquidation(self, position: Position, key: tuple[str, str], now: float) -> None:
        distance = liquidation_distance(position)
        action = self._liquidation.observe(key, distance, position.total, now)
        if action.alert:
            self._journal.record_event("LIQUIDATION_NEAR", {"symbol": position.symbol, "hold_side": position.hold_side,
                                                            "distance": str(distance)})
            self._notifier.notify("LIQUIDATION_NEAR", f"{position.symbol} {position.hold_side}: liquidation "
                                  f"{distance:.2%} away (minimum {self._min_liq:.2%}); reducing")
        if action.reduce:
            self._order_manager.tell(ReducePosition(position.symbol, position.hold_side, self._reduce_fraction,
                                                    f"liquidation {distance:.2%} away"))

    def _check_first_target(self, position: Position, plans: list[PlanOrder]) -> None:
        """Once per signal: its first target filled on the exchange -> stop to break-even."""
        live_ids = [plan.order_id for plan in plans]
        signals = self._journal.open_signals(position.symbol)
        planned = self._journal.entry_intents(signal.id for signal in signals)  # the typed intents, as decided
        for signal in signals:
            done_flag = f"first_target_filled:{signal.id}"
            orders = self._journal.orders(signal_id=signal.id)
            entries = [row for row in orders if row.leg.startswith("entry")]
            if not entries:
                continue
            intent = planned.get(signal.id)
            side = intent.side if intent is not None else str(entries[0].payload.get("position_side", "long"))
            if side != position.hold_side:
                continue
            # FILLED: the outcome tracker saw the exchange execute it (fills), maybe before this poll did.
            tp1 = next((row for row in orders if row.leg == "tp1"
                        and row.state in (OrderState.ACCEPTED, OrderState.FILLED)), None)
            filled = sum((row.filled_size or Decimal(0) for row in entries), Decimal(0))
            if tp1 is None or not first_target_taken(tp1.exchange_order_id, live_ids, position.total, filled):
                continue
            if self._journal.get_flag(done_flag) is not None:
                continue  # moved by a version that kept a flag instead of an intent
            # An exit intent, journaled before the OrderManager is told: a crash in between leaves it pending, and
            # the OrderManager resumes it at start-up; journaled once per signal, so the move happens once.
            move = first_target_break_even(signal.id, channel=signal.channel, message_id=signal.message_id,
                                           index=signal.index, symbol=position.symbol, hold_side=position.hold_side)
            try:
                if not self._journal.record_exit_intent(move, "first target filled: stop to break-even"):
                    continue
            except JournalError as exc:  # the stop in place stays; the next poll journals the move
                log.error("%s: break-even move not journaled (%s); asked again at the next poll", position.symbol, exc)
                continue
            self._journal.record_event("FIRST_TARGET_FILLED", {"signal_id": signal.id, "symbol": position.symbol,
                                                               "hold_side": position.hold_side, "exit": move.key})
            self._order_manager.tell(ExecuteExit(move))

    # --- open orders -------------------------------------------------------------------------------
    def _check_open_orders(self) -> None:
        started = time.monotonic()

        try:
            orders = self._client.pending_orders()
        except BitgetError as exc:
            self._metrics.poll_error("orders")
            self._repeats.failed("open orders poll", f"open orders unreadable: {exc.code}")
            return
        finally:
            self._metrics.observe_poll("orders", time.monotonic() - started)
        self._repeats.succeeded("open orders poll")
        self._metrics.set_open_orders(len(orders))

    # --- local_guard ---------------------------------------------------------------------------------
    def _guard_locally(self, position: Position, now: float) -> tuple[bool, bool]:
        """(has a local stop, has a fresh price) for one position; a position first seen gets its stop journaled:
        the signal's, else (opened outside the bot) the default distance from its entry. The last price is judged
        here too: a position first seen past its stop is closed, and a close already triggered is sent again while
        the position stays open."""
        stop = self._local_stop_of(position)
        if stop is None:
            stop = self._initial_local_stop(position)
        verdict = self._local_verdict(position, stop, now)
        self._fire_local_stop(position, stop, verdict, now)
        return stop is not None, verdict in ("close", "hold")

    def _initial_local_stop(self, position: Position) -> Decimal | None:
        rows = {s.id: self._journal.orders(signal_id=s.id) for s in self._journal.open_signals(position.symbol)}
        intent = intents_from_journal(rows).get((position.symbol, position.hold_side))
        try:
            contract = self._client.contract(position.symbol)
        except BitgetError as exc:
            log.warning("%s: contract unreadable (%s); local stop not set yet", position.symbol, exc.code)
            return None
        if intent is not None:
            stop = contract.round_price(intent.stop_price,
                                        stop_rounding(intent.stop_price, position.average_open_price))
            source = f"signal {intent.signal_id}"
        else:
            stop, source = default_stop(position, self._default_stop_pct, contract), "default for an adopted position"
        self._held_stops[_flag_key(position)] = stop
        try:
            set_local_stop(self._journal, position, stop, source)
        except JournalError as exc:  # held in memory: the stop still fires while the disk is full
            log.error("%s %s local stop %s held in memory only: %s", position.symbol, position.hold_side, stop, exc)
        log.info("%s %s local stop %s (%s)", position.symbol, position.hold_side, stop, source)
        return stop

    def _local_verdict(self, position: Position, stop: Decimal | None, now: float) -> LocalStopVerdict:
        seen = self._prices.get(position.symbol)
        if seen is None:
            return local_stop_verdict(position.hold_side, stop, mark=None, last=None, price_age_s=None,
                                      stale_after_s=self._price_stale_after_s)
        received, tick = seen
        # Aged by when it arrived, as the price feed judges staleness: the ticker's own timestamp is that of the
        # last change, so a quiet market would look stale by it.
        return local_stop_verdict(position.hold_side, stop, mark=tick.mark, last=tick.last, price_age_s=now - received,
                                  stale_after_s=self._price_stale_after_s)

    def _local_stop_of(self, position: Position) -> Decimal | None:
        """The position's local stop: the journal's (moved ones included), else the one held in memory (set while
        the journal could not be written, or unreadable now). Every stop read is held in memory too."""
        key = _flag_key(position)
        try:
            stop = local_stop(self._journal, position)
        except (JournalError, sqlite3.Error) as exc:
            log.error("local stop of %s unreadable from the journal (%s); using the one in memory", key, exc)
            stop = None
        if stop is None:
            return self._held_stops.get(key)
        self._held_stops[key] = stop
        return stop

    def _set_flag(self, name: str, value: str | None) -> None:
        """A bookkeeping flag; a journal that cannot be written (alerted and SAFE by the runtime) must not stop
        the guard from guarding."""
        try:
            self._journal.set_flag(name, value)
        except JournalError as exc:
            log.error("flag %s not journaled: %s", name, exc)

    def _on_price(self, tick: PriceTick) -> None:
        now = time.monotonic()
        self._prices[tick.symbol] = (now, tick)
        for position in self._positions:
            if position.symbol != tick.symbol:
                continue
            stop = self._local_stop_of(position)
            self._fire_local_stop(position, stop, self._local_verdict(position, stop, now), now)

    def _fire_local_stop(self, position: Position, stop: Decimal | None, verdict: LocalStopVerdict,
                         now: float) -> None:
        action = self._local_stops.observe(_flag_key(position), verdict, now)
        if action is None:
            return
        _, tick = self._prices.get(position.symbol, (0.0, None))
        detail = {"symbol": position.symbol, "hold_side": position.hold_side, "c_time": position.c_time,
                  "stop": str(stop), "mark": str(tick.mark) if tick else None,
                  "last": str(tick.last) if tick else None, "source": tick.source if tick else None}
        if action == "trigger":
            self._journal.record_event("LOCAL_STOP_TRIGGERED", detail)
            self._notifier.notify("LOCAL_STOP_TRIGGERED", f"{position.symbol} {position.hold_side}: stop {stop} "
                                  f"crossed; closing by market")
        else:
            self._journal.record_event("LOCAL_STOP_CLOSE_RETRY", detail)
        # Reduce-only, sized from the position the OrderManager reads right before sending: a repeat after the
        # position is gone sends nothing.
        self._order_manager.tell(ProtectiveClose(position.symbol, position.hold_side, f"local stop {stop} crossed"))

    # --- a stop that did not fire ---------------------------------------------------------------------
    def _stops_of(self, position: Position) -> list[Decimal]:
        if self._local_guard:
            stop = self._local_stop_of(position)
            return [stop] if stop is not None else []
        return guarding_stops(position, self._plans, self._pos_mode)

    def _tick_mark(self, symbol: str) -> Decimal | None:
        seen = self._prices.get(symbol)
        return seen[1].mark if seen is not None else None

    def _breach_on_tick(self, tick: PriceTick) -> None:
        now = time.monotonic()
        for position in self._positions:
            if position.symbol == tick.symbol:
                self._check_breach(position, tick.mark, now)

    def _check_breach(self, position: Position, mark: Decimal | None, now: float) -> None:
        key = (position.symbol, position.hold_side)
        stop = breached_stop(position.hold_side, self._stops_of(position), mark)
        action = self._breaches.observe(key, stop is not None, now)
        if action is None or stop is None:
            return
        lasted = self._breaches.breached_for(key, now) or 0.0
        detail = {"symbol": position.symbol, "hold_side": position.hold_side, "stop": str(stop), "mark": str(mark),
                  "size": str(position.total), "breached_for_s": round(lasted, 3), "grace_s": self._breach_grace_s}
        if action == "breached":
            log.warning("%s %s: mark %s is past the stop %s; the stop should fire", position.symbol,
                        position.hold_side, mark, stop)
            return
        if action == "close":
            self._journal.record_event("STOP_BREACHED_CLOSE", detail)
            self._notifier.notify("STOP_BREACHED_CLOSE", f"{position.symbol} {position.hold_side}: mark {mark} past "
                                  f"the stop {stop} for {lasted:.0f}s and the position is still open (the stop did "
                                  "not fire); closing it by market")
        else:
            self._journal.record_event("STOP_BREACHED_CLOSE_RETRY", detail)
        # Reduce-only and sized from the position the OrderManager reads right before sending.
        self._order_manager.tell(ProtectiveClose(position.symbol, position.hold_side,
                                                 f"stop {stop} breached for {lasted:.0f}s: did not fire"))

    # --- account -----------------------------------------------------------------------------------
    def _check_account(self) -> None:
        started = time.monotonic()
        sent = time.time()
        try:
            account = self._client.account()
        except BitgetError as exc:
            self._metrics.poll_error("account")
            self._status.set("exchange", False, f"account unreadable: {exc.code}")
            self._repeats.failed("account poll", f"account unreadable: {exc.code}")
            return
        finally:
            self._metrics.observe_poll("account", time.monotonic() - started)
        self._repeats.succeeded("account poll")
        if self._facts is not None:
            self._facts.put_account(account, sent, "guard")
        self._metrics.set_equity(account.equity)
        self._metrics.set_available(account.available)
        stored = self._journal.get_flag(PEAK_FLAG)
        peak = update_peak(Decimal(stored), account.equity) if stored else account.equity
        if stored is None or peak != Decimal(stored):
            self._set_flag(PEAK_FLAG, str(peak))
        self._metrics.set_peak_equity(peak)
        if drawdown_breached(account.equity, peak, self._max_dd) and self.mode is Mode.NORMAL:
            self._metrics.drawdown_breaker()
            self._journal.record_event("DRAWDOWN_BREAKER", {"equity": str(account.equity), "peak": str(peak)})
            self.request_mode(Mode.SAFE, f"drawdown from peak {peak} to {account.equity}", "drawdown")


def _flag_key(position: Position) -> str:
    return local_stop_flag(position.symbol, position.hold_side, position.c_time)
