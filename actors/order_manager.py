"""OrderManager: the only actor that sends orders.

Every order is journaled as an intent (with its deterministic client id) before the request is sent, so a
crash can never produce a second entry: after a restart the intent is found and the exchange is asked by
client id what became of it. Entries are checked against the trading gate right before the request.

Reconciliation (``trading/reconcile.py`` decides, this actor gathers and applies) runs at start-up, where
``orders_reconciled`` stays red until a pass succeeded, and then every pass interval: order states, intents
that never arrived, external orders and positions (journaled and alerted), and each position's stop and
take-profit ladder sized to what filled. A fill seen in an order's reply or by the fill watch is protected at
once, not at the next pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.base import SupervisedActor, TradingGate
from actors.config import Config
from actors.fencing import Fence, Superseded, fenced
from actors.messages import (
    ExecuteExit,
    MoveStopToBreakEven,
    PlaceBundle,
    ProtectiveClose,
    ReducePosition,
    RepairStop,
)
from actors.metrics import Metrics
from actors.ports import ExchangeFacts, Notices, OrderExchange, Recipient, StatusBoard
from actors.repeats import RepeatedFailures
from exchange.bitget.errors import (
    BitgetError,
    RateLimited,
)
from exchange.bitget.models import (
    MarginMode,
    PosMode,
)
from trading import reconcile as rec
from trading.execution import (
    margin_mode_in_place,
    partial_close_size,
)
from trading.exit_executor import ExitExecutor, ExitSettings
from trading.facts import FactStore, settings_after_set, settings_from_exchange, settings_plan, settings_to_recheck
from trading.intents import entry_payload
from trading.journal import Journal, JournalError, OrderState
from trading.modes import Mode
from trading.order_sender import Closer, OrderSender
from trading.reconciliation_applier import ReconcileSettings, ReconciliationApplier
from trading.refusals import record_refusal
from trading.stop_keeper import StopKeeper, StopSettings

log = logging.getLogger("following.orders")

_OPEN_STATES = list(rec.OPEN_STATES)
_STARTUP_RETRY_S = 1.0  # a failed start-up reconciliation is tried again this soon
_LEVERAGE_RETRIES = 3  # a signal whose leverage call was rate limited is tried again at most this often
_PANIC_RETRY_S = 0.5  # panic close could not read the positions: try again this soon
# At most this many order-detail lookups per pass (Bitget allows 10/s); the rest wait for the next pass.
_MAX_LOOKUPS_PER_PASS = 8
_EXIT_RETRY_S = 0.5


# --- the OrderManager's messages to itself (timers and retries; never carried to a restarted instance) ---------
@dataclass(frozen=True)
class _PassDue:
    """A reconciliation pass is due (then the pending exits and one settings recheck)."""


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
    exit_delay_notice_s: float = 60.0  # an exit of the channel's not done after this long is told (EXIT_DELAYED)

    @classmethod
    def from_config(cls, config: Config, *, local_guard: bool, plan_orders_supported: bool) -> OrderManagerSettings:
        stop = config.risk.stoploss
        return cls(
            pos_mode=config.bitget.position_mode, margin_mode=config.risk.margin_mode,
            check_interval_s=config.monitor.poll_intervals.open_orders_seconds,
            break_even_buffer_pct=stop.break_even_buffer_pct, move_sl_to_be_on_tp1=stop.move_sl_to_be,
            default_stop_loss_pct=config.risk.default_stop_loss_pct, attach_stop=stop.attach_to_entry,
            local_guard=local_guard, plan_orders_supported=plan_orders_supported,
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
    ) -> None:
        self._repeats = RepeatedFailures(log)  # an outage is said once, then counted
        super().__init__(name, supervisor, mode=mode)
        self._journal = journal
        # The newest instance holds the fence: one replaced meanwhile (stuck in a slow request while the
        # Supervisor started this one) finds every exchange write refused and stops.
        self._fence = Fence(journal, "order_manager")
        self._client = fenced(client, self._fence)
        self._notifier = notifier
        self._metrics = metrics
        self._status = status
        self._gate = gate
        self._pos_mode = settings.pos_mode
        self._margin_mode = settings.margin_mode
        self._check_interval_s = settings.check_interval_s
        self._unknown_deadline_s = settings.unknown_outcome_deadline_s
        self._be_buffer = Decimal(str(settings.break_even_buffer_pct))
        self._move_sl_on_tp1 = settings.move_sl_to_be_on_tp1
        self._default_stop_pct = Decimal(str(settings.default_stop_loss_pct))
        self._attach_stop = settings.attach_stop
        self._fill_watch_s = settings.fill_watch_interval_s
        # A whole pass reads all positions (5/s at Bitget, shared with the guard): not more often than this.
        self._min_pass_interval_s = settings.min_pass_interval_s
        self._panic_done = False
        self._reconciled = False
        self._leverage_tries: dict[int, int] = {}
        # local_guard: stops live in the journal and the PositionGuard closes by market when one is crossed; no
        # stop is ever sent to the exchange (no preset, no plan). Without plan orders at all (the start-up probe
        # said unsupported) no take-profit plan is placed either and plans are never listed.
        self._local_guard = settings.local_guard
        self._plans_supported = settings.plan_orders_supported
        self._exit_retry_pending = False
        self._stopping = False
        self._facts: ExchangeFacts = facts if facts is not None else FactStore()
        self._recon = ReconciliationApplier(
            journal=journal, client=self._client, notifier=notifier, metrics=metrics, facts=self._facts,
            settings=ReconcileSettings(pos_mode=settings.pos_mode,
                                       unknown_outcome_deadline_s=settings.unknown_outcome_deadline_s,
                                       local_guard=settings.local_guard,
                                       plan_orders_supported=settings.plan_orders_supported),
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
                                     pos_mode=settings.pos_mode, break_even_buffer=self._be_buffer,
                                     default_stop_loss_pct=self._default_stop_pct, local_guard=settings.local_guard))
        self._exits = ExitExecutor(
            journal=journal, client=self._client, notifier=notifier, metrics=metrics, failures=self._repeats,
            follow_up=self._recon, settings=ExitSettings(
                pos_mode=settings.pos_mode, margin_mode=settings.margin_mode, break_even_buffer=self._be_buffer,
                stop_moves_enabled=settings.move_sl_to_be_on_tp1, local_guard=settings.local_guard,
                delay_notice_s=settings.exit_delay_notice_s))
        # Each symbol's margin mode and leverage as last set or read (trading.facts): set again only when an entry
        # needs other ones or they are older than settings_recheck_s; reconciliation reads them before then.
        self._settings_recheck_s = settings_recheck_s
        # Signals approved before this instance existed can only have died in a former instance's mailbox.
        self._created_at = time.time()

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
            if row.payload.get("exit"):
                continue  # an exit's close journaled and never sent: its exit sends it (same client id)
            # Journaled, maybe sent before a crash: only the exchange can tell; unknown until the deadline.
            self._journal.set_order_state(row.client_oid, OrderState.SUBMITTED)
        self._refuse_interrupted_bundles()
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
            self._place_bundle(message)
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
            self._closer.journal_unjournaled()
            self._reconcile_pass()
            self._run_exits()
            self._recheck_settings()
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

    def _refuse_interrupted_bundles(self) -> None:
        """Approved signals whose bundle died in a mailbox (no order journaled) are refused and reported, not sent
        late: the price and the account they were sized for are gone. So is a signal marked traded ("sending the
        entries") by an instance that died before it journaled the first leg: else it stayed an open trade
        that never was, and the user was never told."""
        for row in [*self._journal.signals_with_decision("approved"), *self._journal.open_signals()]:
            if row.updated_at >= self._created_at or self._journal.orders(signal_id=row.id):
                continue
            detail = "the bot stopped before sending this signal's orders; not traded"
            if not self._journal.transition_signal(row.id, [row.decision], "refused", f"INTERRUPTED: {detail}"):
                continue
            self._refused_before_send(row.id, "INTERRUPTED", detail)
            self._notifier.notify("SIGNAL_REFUSED", f"post {row.message_id} {row.symbol or ''}: INTERRUPTED ({detail})")

    def _place_bundle(self, message: PlaceBundle) -> None:
        intent = message.intent
        current = self._journal.signal(message.signal_id)
        if current is not None and current.decision != "approved":
            # Decided meanwhile (refused as interrupted when this actor started): never sent twice or late.
            log.info("signal %s is %s; its bundle is not sent", message.signal_id, current.decision)
            return
        if not self._entries_allowed():
            if self._journal.transition_signal(message.signal_id, ["approved"], "refused",
                                               "MODE_NOT_NORMAL: checked before send"):
                self._refused_before_send(message.signal_id, "mode_not_normal", "checked before send")
            return
        symbol = intent.symbol
        hold = intent.side if self._pos_mode == "hedge_mode" and intent.margin_mode == "isolated" else None
        known = self._facts.settings(symbol)
        plan = settings_plan(known, margin_mode=intent.margin_mode, leverage=intent.leverage, hold_side=hold,
                             now=time.time(), max_age_s=self._settings_recheck_s)
        if not plan.nothing_to_do:
            self._facts.forget_settings(symbol)  # whatever happens below, the old knowledge is not trusted
        if plan.set_margin_mode:
            try:
                self._client.set_margin_mode(symbol, intent.margin_mode)
            except BitgetError as exc:
                if not self._margin_mode_already(message.signal_id, symbol, intent.margin_mode, exc):
                    return
        if plan.set_leverage:
            try:
                self._client.set_leverage(symbol, intent.leverage, hold_side=hold)
            except BitgetError as exc:
                tries = self._leverage_tries.get(message.signal_id, 0) + 1
                if isinstance(exc, RateLimited) and tries <= _LEVERAGE_RETRIES:
                    # Refused unprocessed (several signals within a second): the same bundle again in a moment.
                    self._leverage_tries[message.signal_id] = tries
                    self.schedule_once(exc.retry_after or 0.5, message)
                    return
                self._leverage_tries.pop(message.signal_id, None)
                if not self._journal.transition_signal(message.signal_id, ["approved"], "refused",
                                                       f"leverage not set: {exc.code}"):
                    return
                self._refused_before_send(message.signal_id, "leverage_not_set",
                                          f"leverage {intent.leverage}: {exc.code}")
                self._notifier.notify("SIGNAL_REFUSED",
                                      f"{symbol}: leverage {intent.leverage} not accepted ({exc.code})")
                return
        if not plan.nothing_to_do:
            before = known.value if known is not None and not plan.set_margin_mode else None
            self._facts.put_settings(symbol, settings_after_set(before, margin_mode=intent.margin_mode,
                                                                leverage=intent.leverage, hold_side=hold),
                                     time.time(), "set")
        self._leverage_tries.pop(message.signal_id, None)
        payload = entry_payload(intent, attached_stop=self._attach_stop and not self._local_guard)
        # Open before the first send: a fill reported in the reply is protected at once, as this signal's. Only
        # from "approved": a signal another instance refused (reported "not traded") is never traded.
        self._fence.check()
        if not self._journal.transition_signal(message.signal_id, ["approved"], "traded", "sending the entries"):
            log.info("signal %s was decided meanwhile; its bundle is not sent", message.signal_id)
            return
        for number, leg in enumerate(intent.legs):
            if not self._entries_allowed():  # a kill switch may have fired between two legs
                break
            self._sender.submit(leg, message.signal_id, payload=payload)
            if number == 0:
                self._observe_entry_latency(message.signal_id, leg.client_oid)
        legs = self._journal.orders(signal_id=message.signal_id)
        if any(row.state is not OrderState.REJECTED for row in legs):
            self._journal.set_signal_decision(message.signal_id, "traded", f"size {intent.size} lev {intent.leverage}")
        else:
            self._journal.set_signal_decision(message.signal_id, "refused", "every entry leg was rejected")
            self._facts.forget_settings(symbol)  # maybe refused for them: read or set again next time

    def _observe_entry_latency(self, signal_id: int, client_oid: str) -> None:
        """Post seen -> first entry accepted, for the latency histogram (nothing when the entry was refused)."""
        row = self._journal.order(client_oid)
        signal = self._journal.signal(signal_id)
        if row is None or signal is None or row.state not in (OrderState.ACCEPTED, OrderState.PARTIAL,
                                                               OrderState.FILLED):
            return
        seen = self._journal.post_seen_at(signal.channel, signal.message_id)
        if seen is not None and hasattr(self._metrics, "entry_accepted"):
            self._metrics.entry_accepted(signal.channel, time.time() - seen)

    def _margin_mode_already(self, signal_id: int, symbol: str, wanted: str, error: BitgetError) -> bool:
        """A refused set-margin-mode is harmless only if the symbol is in that mode already; else no entry."""
        try:
            reported = self._client.account(symbol).margin_mode
        except BitgetError as exc:
            reported, detail = None, f"{error.code}; mode unreadable: {exc.code}"
        else:
            detail = f"{error.code}; the symbol is in {reported or 'an unknown'} margin"
        if margin_mode_in_place(wanted, reported):
            log.info("set margin mode %s on %s: %s; already in place", wanted, symbol, error.code)
            return True
        if not self._journal.transition_signal(signal_id, ["approved"], "refused",
                                               f"margin mode {wanted} not set: {detail}"):
            return False
        self._refused_before_send(signal_id, "margin_mode_not_set", f"{wanted}: {detail}")
        self._notifier.notify("SIGNAL_REFUSED", f"{symbol}: {wanted} margin not set ({detail}); entry not sent")
        return False

    def _reconcile_pass(self) -> None:
        """One reconciliation of the journal against the exchange; /readyz stays red until one succeeded."""
        try:
            decisions = self._recon.gather()
        except BitgetError as exc:
            self._repeats.failed("reconciliation", f"reconciliation failed: {exc.code}")
            if not self._reconciled:
                self._status.set("orders_reconciled", False, f"start-up reconciliation failed: {exc.code}")
                # Not ready until it succeeds: try again soon, not only at the next regular pass.
                self.schedule_once(min(self._check_interval_s, _STARTUP_RETRY_S), _PassDue())
            return
        self._repeats.succeeded("reconciliation")
        self._recon.apply(decisions)
        self._recon.clean_after_pass()
        if not self._reconciled:
            self._reconciled = True
            self._journal.record_event("RECONCILED", {"decisions": len(decisions)})
            self._status.set("orders_reconciled", True)

    def _recheck_settings(self) -> None:
        """Read again the margin mode and leverage of the symbol whose known settings are the oldest, once they
        are half as old as trusted: someone may have changed them by hand; a difference is set at the next entry
        on that symbol. One request per pass at most."""
        for symbol in settings_to_recheck(self._facts.all_settings(), time.time(), self._settings_recheck_s / 2):
            sent = time.time()
            try:
                account = self._client.account(symbol)
            except BitgetError as exc:
                log.info("settings of %s unreadable (%s); set again at the next entry", symbol, exc.code)
                self._facts.forget_settings(symbol)
                continue
            read = settings_from_exchange(account.margin_mode, account.isolated_long_lever,
                                          account.isolated_short_lever, account.crossed_lever)
            if read is None:
                self._facts.forget_settings(symbol)
            else:
                self._facts.put_settings(symbol, read, sent, "reconcile")

    # --- exits: the channel's updates, journaled as intents by the RiskGate --------------------------------
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

    # --- refusals found right before sending: journaled and counted like the RiskGate's ----------------
    def _refused_before_send(self, signal_id: int, reason: str, detail: str) -> None:
        record_refusal(self._journal, self._metrics, signal_id=signal_id, reason=reason, detail=detail)

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
