"""OrderManager: the only actor that sends orders.

Every order is journaled as an intent (with its deterministic client id) before the request is sent, so a
crash can never produce a second entry: after a restart the intent is found and the exchange is asked by
client id what became of it. Entries are checked against the trading gate right before the request.

Reconciliation (``trading/reconcile.py`` decides, ``trading/reconciliation_applier.py`` gathers and applies)
runs at start-up, where ``orders_reconciled`` stays red until a pass succeeded, and then every pass interval:
order states, intents that never arrived, external orders and positions (journaled and alerted), and each
position's stop and take-profit ladder sized to what filled. A fill seen in an order's reply or by the fill watch
is protected at once, not at the next pass.

The procedures live in ``trading/`` as plain objects over this actor's fenced client (entries, sending and
closes, stops, reconciliation, exits); this actor keeps the message handling, its timers and its lifecycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pykka

from actors.base import SupervisedActor, TradingGate
from actors.fencing import Fence, Superseded, fenced
from actors.messages import (
    ExecuteExit,
    MoveStopToBreakEven,
    PlaceBundle,
    ProtectiveClose,
    ReducePosition,
    RepairStop,
)
from actors.ports import ExchangeFacts, Notices, OrderExchange, Recipient, StatusBoard
from exchange.bitget.errors import BitgetError
from exchange.bitget.models import MarginMode, PosMode
from ops.metrics import Metrics
from ops.repeats import RepeatedFailures
from runtime.config import Config
from trading import reconcile as rec
from trading.entry_sender import EntrySender
from trading.execution import partial_close_size
from trading.exit_executor import ExitExecutor, ExitSettings
from trading.facts import FactStore
from trading.journal import Journal, JournalError, OrderState
from trading.modes import Mode
from trading.order_sender import Closer, OrderSender
from trading.reconciliation_applier import ReconcileSettings, ReconciliationApplier
from trading.settings_ahead import PrepareSettings, SettingsPreparer
from trading.shared_listings import SharedListings
from trading.stop_intents import UNKNOWN_STOP_GRACE_S, is_stop_intent
from trading.stop_keeper import StopKeeper, StopSettings

log = logging.getLogger("following.orders")

_OPEN_STATES = list(rec.OPEN_STATES)
_STARTUP_RETRY_S = 1.0  # a failed start-up reconciliation is tried again this soon
_PANIC_RETRY_S = 0.5  # panic close could not read the positions: try again this soon
_EXIT_RETRY_S = 0.5


# --- the OrderManager's messages to itself (timers and retries; never carried to a restarted instance) ---------
@dataclass(frozen=True)
class _PassDue:
    """A reconciliation pass is due (then the pending exits and one settings recheck)."""


@dataclass(frozen=True)
class _PassStep:
    """The next step of the running pass (``number``: which pass; a step of an abandoned pass is dropped)."""

    number: int


@dataclass(frozen=True)
class _FillWatchDue:
    """Entries sent without an attached stop are looked up (their fills need a stop at once)."""


@dataclass(frozen=True)
class _ExitsDue:
    """Pending exits are tried again (one waited for its entry, the exchange or a lookup)."""


@dataclass(frozen=True)
class _PanicRetry:
    """The panic close could not read the positions: try again."""

    reason: str


@dataclass(frozen=True)
class _ProtectAgain:
    """Protect this symbol's positions again (a stop or target request was rate limited)."""

    symbol: str


@dataclass(frozen=True)
class OrderManagerSettings:
    """The OrderManager's position and margin mode, its reconciliation pace and its stop policy."""

    pos_mode: PosMode
    margin_mode: MarginMode
    check_interval_s: float = 1.0
    unknown_outcome_deadline_s: float = 30.0
    break_even_buffer_pct: Decimal = Decimal("0.001")
    move_sl_to_be_on_tp1: bool = True
    default_stop_loss_pct: Decimal = Decimal("0.006")
    attach_stop: bool = True  # the stop rides on each entry (presetStopLossPrice)
    fill_watch_interval_s: float = 0.25
    min_pass_interval_s: float = 1.0
    local_guard: bool = False  # stops are the bot's own: never sent to the exchange
    plan_orders_supported: bool = True
    # A stop of ours sent without an answer and not listed this long after (at most the outcome deadline) is taken
    # as lost and its next attempt goes; until then no second stop is sent (trading.stop_intents).
    unknown_stop_grace_s: float = UNKNOWN_STOP_GRACE_S
    exit_delay_notice_s: float = 60.0  # an exit of the channel's not done after this long is told (EXIT_DELAYED)
    shared_listing_max_age_s: float = 6.0  # a pass may decide on the guard's listings this old (risk.max_fact_age)

    @classmethod
    def from_config(cls, config: Config, *, local_guard: bool, plan_orders_supported: bool) -> OrderManagerSettings:
        stop = config.risk.stoploss
        return cls(
            pos_mode=config.bitget.position_mode, margin_mode=config.risk.margin_mode,
            check_interval_s=config.monitor.poll_intervals.open_orders_seconds,
            break_even_buffer_pct=stop.break_even_buffer_pct, move_sl_to_be_on_tp1=stop.move_sl_to_be,
            default_stop_loss_pct=config.risk.default_stop_loss_pct, attach_stop=stop.attach_to_entry,
            local_guard=local_guard, plan_orders_supported=plan_orders_supported,
            shared_listing_max_age_s=config.risk.max_fact_age_seconds,
        )


class OrderManager(SupervisedActor):
    def __init__(
        self,
        *,
        name: str,
        supervisor: Recipient | None,
        mode: Mode = Mode.NORMAL,
        journal: Journal,
        client: OrderExchange,
        notifier: Notices,
        metrics: Metrics,
        status: StatusBoard,
        gate: TradingGate,
        settings: OrderManagerSettings,
        facts: ExchangeFacts | None = None,
        settings_recheck_s: float = 300.0,
        listings: SharedListings | None = None,
        prepare: PrepareSettings | None = None,
    ) -> None:
        self._repeats = RepeatedFailures(log)  # an outage is said once, then counted
        super().__init__(name, supervisor, mode=mode)
        self._journal = journal
        # The newest instance holds the fence: one replaced meanwhile (stuck in a slow request while the
        # Supervisor started this one) finds every exchange write refused and stops.
        self._fence = Fence(journal, "order_manager")
        # The guard's listings, shared (trading.shared_listings): every write of this instance is counted there, and a
        # pass decides on the guard's reading only while it is fresh, newer than every write, and shows nothing to do.
        self._listings = listings if listings is not None else SharedListings()
        self._client = fenced(client, self._fence, self._listings.writes)
        self._notifier = notifier
        self._metrics = metrics
        self._status = status
        self._gate = gate
        self._check_interval_s = settings.check_interval_s
        be_buffer = Decimal(str(settings.break_even_buffer_pct))
        self._move_sl_on_tp1 = settings.move_sl_to_be_on_tp1
        self._attach_stop = settings.attach_stop
        self._fill_watch_s = settings.fill_watch_interval_s
        # A whole pass reads all positions (5/s at Bitget, shared with the guard): not more often than this.
        self._min_pass_interval_s = settings.min_pass_interval_s
        self._panic_done = False
        self._pass: Iterator[None] | None = None  # the regular pass under way, one step per message
        self._pass_number = 0
        self._reconciled = False
        self._exit_retry_pending = False
        self._stopping = False
        # Each symbol's margin mode and leverage as last set or read (trading.facts): set again only when an entry
        # needs other ones or they are older than settings_recheck_s; reconciliation reads them before then.
        self._facts: ExchangeFacts = facts if facts is not None else FactStore()
        # The procedures (trading/): plain objects over the fenced client; this actor keeps messages, timers and
        # lifecycle. local_guard: stops live in the journal, none is sent to the exchange (no preset, no plan);
        # without plan orders (the start-up probe said unsupported) no take-profit plan is placed or listed.
        stop_grace_s = min(settings.unknown_stop_grace_s, settings.unknown_outcome_deadline_s)
        self._recon = ReconciliationApplier(
            journal=journal, client=self._client, notifier=notifier, metrics=metrics, facts=self._facts,
            settings=ReconcileSettings(pos_mode=settings.pos_mode,
                                       unknown_outcome_deadline_s=settings.unknown_outcome_deadline_s,
                                       local_guard=settings.local_guard,
                                       plan_orders_supported=settings.plan_orders_supported,
                                       shared_listing_max_age_s=settings.shared_listing_max_age_s,
                                       unknown_stop_grace_s=stop_grace_s),
            listings=self._listings,
            close_position=lambda position, size, reason: self._closer.close(position, size, reason),
            protect_later=lambda symbol, delay: self.schedule_once(delay, _ProtectAgain(symbol)))
        self._sender = OrderSender(journal=journal, client=self._client, notifier=notifier, metrics=metrics,
                                   follow_up=self._recon, entries_allowed=self._entries_allowed,
                                   margin_mode=settings.margin_mode,
                                   preset_stop=settings.attach_stop and not settings.local_guard)
        self._closer = Closer(journal=journal, client=self._client, notifier=notifier, metrics=metrics,
                              sender=self._sender, follow_up=self._recon, pos_mode=settings.pos_mode)
        self._stops = StopKeeper(journal=journal, client=self._client, notifier=notifier, metrics=metrics,
                                 intents=self._recon.intents, settings=StopSettings(
                                     pos_mode=settings.pos_mode, break_even_buffer=be_buffer,
                                     default_stop_loss_pct=Decimal(str(settings.default_stop_loss_pct)),
                                     local_guard=settings.local_guard,
                                     unknown_stop_grace_s=stop_grace_s))
        self._entries = EntrySender(
            journal=journal, client=self._client, notifier=notifier, metrics=metrics, facts=self._facts,
            sender=self._sender, entries_allowed=self._entries_allowed, fence_check=self._fence.check,
            pos_mode=settings.pos_mode, preset_stop=settings.attach_stop and not settings.local_guard,
            settings_recheck_s=settings_recheck_s, created_at=time.time())
        # Margin mode and leverage set ahead on watched symbols, one per pass (trading/settings_ahead.py).
        self._prepare = None if prepare is None else SettingsPreparer(
            journal=journal, client=self._client, facts=self._facts, settings=prepare,
            entries_allowed=self._entries_allowed)
        self._exits = ExitExecutor(
            journal=journal, client=self._client, notifier=notifier, metrics=metrics, failures=self._repeats,
            follow_up=self._recon, settings=ExitSettings(
                pos_mode=settings.pos_mode, margin_mode=settings.margin_mode, break_even_buffer=be_buffer,
                stop_moves_enabled=settings.move_sl_to_be_on_tp1, local_guard=settings.local_guard,
                delay_notice_s=settings.exit_delay_notice_s,
                unknown_stop_grace_s=stop_grace_s))

    # --- lifecycle -----------------------------------------------------------------------------------
    def on_started(self) -> None:
        try:
            self._start_up()
        except Superseded as exc:
            self._superseded(exc)

    def _superseded(self, exc: Superseded) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.warning("order manager instance stops without acting: %s", exc)
        self._journal.record_event("ACTOR_SUPERSEDED", {"actor": "order_manager", "generation": self._fence.generation})
        self.actor_ref.stop(block=False)

    def _start_up(self) -> None:
        self._status.set("orders_reconciled", False, "start-up reconciliation pending")
        for row in self._journal.orders(states=[OrderState.INTENT]):
            if row.payload.get("exit") or is_stop_intent(row):
                continue  # an exit's close, a stop of ours, journaled and never sent: sent under the same client id
            # Journaled, maybe sent before a crash: only the exchange can tell; unknown until the deadline.
            self._journal.set_order_state(row.client_oid, OrderState.SUBMITTED)
        self._entries.refuse_interrupted()
        self._stops.resume()
        self._reconcile_pass()
        self._run_exits()
        if self.mode is Mode.PANIC:
            self._panic_close("restarted in panic")
        self.schedule_every(max(self._check_interval_s, self._min_pass_interval_s), _PassDue())
        if not self._attach_stop:
            self.schedule_every(self._fill_watch_s, _FillWatchDue())

    def on_mode_changed(self, message: Any) -> None:
        if message.mode is Mode.PANIC:
            try:
                self._panic_close(message.reason)
            except Superseded as exc:
                self._superseded(exc)

    def handle(self, message: Any) -> Any:
        try:
            self._fence.check()
            self._handle(message)
        except Superseded as exc:
            self._superseded(exc)
        return None

    def _handle(self, message: Any) -> None:
        if isinstance(message, PlaceBundle):
            retry_s = self._entries.place(message)
            if retry_s is not None:
                self.schedule_once(retry_s, message)
        elif isinstance(message, ExecuteExit):
            self._run_exits()
        elif isinstance(message, _ExitsDue):
            self._exit_retry_pending = False
            self._run_exits()
        elif isinstance(message, RepairStop):
            self._stops.repair(message.symbol, message.hold_side, message.reason)
        elif isinstance(message, ProtectiveClose):
            self._closer.protective_close(message.symbol, message.hold_side, message.reason)
        elif isinstance(message, _PassDue):
            if self._pass is None:  # one pass at a time: a tick during a pass's pauses is not another pass
                self._pass_number += 1
                self._pass = self._pass_steps()
                self._step_pass()
        elif isinstance(message, _PassStep):
            if self._pass is not None and message.number == self._pass_number:
                self._step_pass()
        elif isinstance(message, _FillWatchDue):
            self._recon.watch_unprotected_entries()
        elif isinstance(message, _PanicRetry):
            if self.mode is Mode.PANIC:
                self._panic_close(message.reason)
        elif isinstance(message, _ProtectAgain):
            self._recon.protect(message.symbol)
        elif isinstance(message, (ReducePosition, MoveStopToBreakEven)):
            self._guard_request(message)

    # --- entries -------------------------------------------------------------------------------------
    def _entries_allowed(self) -> bool:
        return self.mode is Mode.NORMAL and self._gate.entries_allowed()

    # --- reconciliation passes, in steps -------------------------------------------------------------
    def _pass_steps(self) -> Iterator[None]:
        """One regular pass, pausing after each request: each step is a message of its own (``_PassStep``), so an
        entry or an exit told meanwhile is handled between two steps, not after the whole pass."""
        self._closer.journal_unjournaled()
        self._stops.resume()
        yield
        yield from self._reconcile_steps()
        yield
        self._run_exits()
        yield
        self._entries.recheck_settings()
        if self._prepare is not None:
            yield
            self._prepare.prepare_one()  # margin mode and leverage ahead on one watched symbol

    def _step_pass(self) -> None:
        """The pass's next step; the one after it is told to self, behind whatever waits in the mailbox."""
        assert self._pass is not None
        try:
            next(self._pass)
        except StopIteration:
            self._pass = None
            return
        except BaseException:
            self._pass = None  # Superseded (this instance stops) or a bug: the next tick starts a new pass
            raise
        try:
            self.actor_ref.tell(_PassStep(self._pass_number))
        except pykka.ActorDeadError:  # stopping: the pass ends here, the next instance starts its own
            self._pass = None

    def _reconcile_pass(self) -> None:
        """One reconciliation pass without pauses (at start-up, before anything else is handled)."""
        for _ in self._reconcile_steps():
            pass

    def _reconcile_steps(self) -> Iterator[None]:
        """One reconciliation of the journal against the exchange; /readyz stays red until one succeeded. The
        reading pauses after each request (``ReconciliationApplier.gather_steps``: a write made in a pause starts
        it over); the decisions are applied in the step that checked them, and the clean-up reads again itself."""
        try:
            decisions = yield from self._recon.gather_steps()
        except BitgetError as exc:
            self._repeats.failed("reconciliation", f"reconciliation failed: {exc.code}")
            if not self._reconciled:
                self._status.set("orders_reconciled", False, f"start-up reconciliation failed: {exc.code}")
                # Not ready until it succeeds: try again soon, not only at the next regular pass.
                self.schedule_once(min(self._check_interval_s, _STARTUP_RETRY_S), _PassDue())
            return
        self._repeats.succeeded("reconciliation")
        self._recon.apply(decisions)
        yield
        self._recon.clean_after_pass()
        if not self._reconciled:
            self._reconciled = True
            self._journal.record_event("RECONCILED", {"decisions": len(decisions)})
            self._status.set("orders_reconciled", True)

    def _run_exits(self) -> None:
        if self._exits.run_all() and not self._exit_retry_pending:
            self._exit_retry_pending = True
            self.schedule_once(_EXIT_RETRY_S, _ExitsDue())

    def _cancel_entries(self, signal_id: int | None = None) -> None:
        """Cancel the working entries (of one signal, or all), then record what became of them."""
        rows = self._journal.orders(states=_OPEN_STATES) if signal_id is None else self._journal.orders(
            states=_OPEN_STATES, signal_id=signal_id)
        for row in rows:
            if not row.leg.startswith("entry"):
                continue
            try:
                self._client.cancel_order(row.symbol, client_oid=row.client_oid)
            except BitgetError as exc:
                log.info("cancel %s: %s", row.client_oid, exc.code)
            self._recon.resolve(row.client_oid, row.symbol)

    def _panic_close(self, reason: str) -> None:
        """Once per panic: cancel working entries, close every position reduce-only; stops stay."""
        if self._panic_done:
            return
        self._panic_done = True
        try:
            self._cancel_entries()
        except JournalError as exc:  # the closes below matter more than the bookkeeping of the cancels
            log.error("panic: entry cancels not all journaled (%s); closing positions anyway", exc)
        try:
            positions = [p for p in self._client.positions() if p.total > 0]
        except BitgetError as exc:
            log.error("panic: positions unreadable (%s); trying again in %.1f s", exc.code, _PANIC_RETRY_S)
            self._panic_done = False
            self.schedule_once(_PANIC_RETRY_S, _PanicRetry(reason))
            return
        for position in positions:
            self._closer.close(position, None, f"panic: {reason}", cause="panic")
        self._journal.record_event("PANIC_CLOSE", {"positions": len(positions), "reason": reason})
        self._notifier.notify("PANIC_CLOSE", f"closed {len(positions)} position(s): {reason}")

    # --- requests from the PositionGuard (liquidation distance, first target filled) ------------------
    def _guard_request(self, message: ReducePosition | MoveStopToBreakEven) -> None:
        if isinstance(message, MoveStopToBreakEven):
            # The guard's first-target rule obeys move_sl_to_be; a retry (of a channel's explicit move too) always runs.
            if self._move_sl_on_tp1 or self._stops.retrying(message.symbol, message.hold_side):
                retry_s = self._stops.move_to_break_even(message)
                if retry_s is not None:
                    self.schedule_once(retry_s, message)
            return
        position = self._closer.position(message.symbol, message.hold_side)
        if position is None:
            return
        try:
            contract = self._client.contract(position.symbol)
        except BitgetError as exc:  # the stop in place stays; a reduction is asked again on a later poll
            log.warning("%s: contract unreadable (%s); %s not done", position.symbol, exc.code, message.reason)
            return
        if isinstance(message, ReducePosition):
            size = partial_close_size(position, message.fraction * 100, contract)
            if size > 0:
                self._closer.close(position, size, message.reason, cause="liquidation_reduce")
                self._journal.record_event("POSITION_REDUCED", {"symbol": position.symbol, "size": str(size),
                                                                "hold_side": position.hold_side,
                                                                "reason": message.reason})
                self._recon.clean_plans(position.symbol)  # the reduce plans never sum to more than the rest
