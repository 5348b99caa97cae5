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

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
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
    DuplicateClientOid,
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
)
from exchange.bitget.models import (
    MarginMode,
    Order,
    OrderRequest,
    PlacedOrder,
    PlanOrder,
    Position,
    PositionSide,
    PosMode,
    TpslPlanType,
    TpslRequest,
    as_position_side,
)
from exchange.bitget.semantics import tpsl_hold_side
from trading import reconcile as rec
from trading.bundle import CLIENT_OID_PREFIX, LegPlan, break_even_stop, signal_oid_prefix
from trading.execution import (
    action_client_oid,
    close_request,
    default_stop,
    margin_mode_in_place,
    partial_close_size,
    stop_is_valid,
)
from trading.exit_executor import ExitExecutor, ExitSettings
from trading.facts import FactStore, settings_after_set, settings_from_exchange, settings_plan, settings_to_recheck
from trading.guard import (
    current_stop,
    moved_stop,
    remember_moved_stop,
    set_local_stop,
    stop_plans_for,
    stop_rounding,
    uncovered_size,
)
from trading.intents import entry_payload
from trading.journal import Journal, JournalError, OrderRow, OrderState
from trading.modes import Mode
from trading.refusals import record_refusal

log = logging.getLogger("following.orders")

_OPEN_STATES = list(rec.OPEN_STATES)
_STARTUP_RETRY_S = 1.0  # a failed start-up reconciliation is tried again this soon
_LEVERAGE_RETRIES = 3  # a signal whose leverage call was rate limited is tried again at most this often
_PANIC_RETRY_S = 0.5  # panic close could not read the positions: try again this soon
_BREAK_EVEN_RETRIES = 3  # a break-even move the exchange refused is asked again this often (backing off) ...
_BREAK_EVEN_RETRY_S = 0.5  # ... this many seconds times the attempt number apart
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
        self._unjournaled_closes: list[tuple[OrderRequest, dict[str, Any]]] = []  # sent while the disk was full
        self._reconciled = False
        self._leverage_tries: dict[int, int] = {}
        # local_guard: stops live in the journal and the PositionGuard closes by market when one is crossed; no
        # stop is ever sent to the exchange (no preset, no plan). Without plan orders at all (the start-up probe
        # said unsupported) no take-profit plan is placed either and plans are never listed.
        self._local_guard = settings.local_guard
        self._plans_supported = settings.plan_orders_supported
        self._break_even_tries: dict[tuple[str, str], int] = {}
        self._exit_retry_pending = False
        self._stopping = False
        self._last_view: rec.ExchangeView | None = None
        self._reported_foreign: set[str] | None = None  # plans of others already reported (FOREIGN_PLAN)
        self._exits = ExitExecutor(
            journal=journal, client=self._client, notifier=notifier, metrics=metrics, failures=self._repeats,
            follow_up=_FollowUp(self), settings=ExitSettings(
                pos_mode=settings.pos_mode, margin_mode=settings.margin_mode, break_even_buffer=self._be_buffer,
                stop_moves_enabled=settings.move_sl_to_be_on_tp1, local_guard=settings.local_guard,
                delay_notice_s=settings.exit_delay_notice_s))
        # Each symbol's margin mode and leverage as last set or read (trading.facts): set again only when an entry
        # needs other ones or they are older than settings_recheck_s; reconciliation reads them before then.
        self._facts: ExchangeFacts = facts if facts is not None else FactStore()
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
            self._repair_stop(message)
        elif isinstance(message, ProtectiveClose):
            self._protective_close(message.symbol, message.hold_side, message.reason)
        elif isinstance(message, _PassDue):
            self._journal_unjournaled_closes()
            self._reconcile_pass()
            self._run_exits()
            self._recheck_settings()
        elif isinstance(message, _FillWatchDue):
            self._watch_unprotected_entries()
        elif isinstance(message, _PanicRetry):
            if self.mode is Mode.PANIC:
                self._panic_close(message.reason)
        elif isinstance(message, _ProtectAgain):
            self._protect(message.symbol)
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
            self._submit(leg, message.signal_id, payload=payload)
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

    def _submit(self, leg: LegPlan, signal_id: int | None, payload: dict[str, Any]) -> None:
        """Journal the intent, then send; never send a client id that was journaled before."""
        recorded = self._journal.record_intent(
            leg.client_oid, signal_id=signal_id, symbol=leg.symbol, leg=leg.leg, side=leg.side,
            trade_side=leg.trade_side, order_type=leg.order_type, size=leg.size, price=leg.price,
            reduce_only=leg.reduce_only, payload=payload,
        )
        if not recorded:
            log.info("intent %s already journaled: not sent again", leg.client_oid)
            return
        request = OrderRequest(
            symbol=leg.symbol, side=leg.side, size=leg.size, order_type=leg.order_type, price=leg.price,
            trade_side=leg.trade_side, reduce_only=leg.reduce_only, client_oid=leg.client_oid,
            margin_mode=self._margin_mode,
            preset_stop_loss_price=leg.preset_stop_loss_price if self._attach_stop and not self._local_guard else None,
        )
        self._send(request, leg.leg)

    def _send(self, request: OrderRequest, leg: str) -> None:
        oid = request.client_oid or ""
        is_entry = leg.startswith("entry")
        if is_entry and not self._entries_allowed():
            self._journal.set_order_state(oid, OrderState.REJECTED, error="mode is not normal")
            return
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_order(request)
        except DuplicateClientOid:
            self._resolve(oid, request.symbol)
            return
        except UnknownOutcome as exc:
            # The order may exist: it stays SUBMITTED until a lookup by client id decides.
            log.warning("order %s outcome unknown (%s); will look it up", oid, exc.code)
            self._metrics.order(_leg_label(leg), "unknown")
            return
        except BitgetError as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{exc.code}")
            self._metrics.order(_leg_label(leg), "rejected")
            self._notifier.notify("ORDER_REJECTED", f"{request.symbol} {leg} rejected by the exchange: {exc.code}")
            return
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.order(_leg_label(leg), "accepted")
        log.info("%s %s %s %s accepted (%s)", request.symbol, leg, request.side, request.size, oid)
        self._resolve(oid, request.symbol)

    # --- following orders until they are done ------------------------------------------------------
    def _resolve(self, oid: str, symbol: str) -> None:
        """Ask the exchange what became of one order (by client id) and apply the answer."""
        row = self._journal.order(oid)
        if row is None or row.state.is_terminal:
            return
        try:
            order = self._client.resolve_unknown(symbol, oid)
        except BitgetError as exc:
            log.info("lookup of %s failed: %s", oid, exc.code)
            return
        view = rec.ExchangeView(details={oid: order})
        self._apply(rec.order_decisions([row], view, now=time.time(), unknown_deadline_s=self._unknown_deadline_s))

    def _reconcile_pass(self) -> None:
        """One reconciliation of the journal against the exchange; /readyz stays red until one succeeded."""
        try:
            decisions = self._gather_decisions()
        except BitgetError as exc:
            self._repeats.failed("reconciliation", f"reconciliation failed: {exc.code}")
            if not self._reconciled:
                self._status.set("orders_reconciled", False, f"start-up reconciliation failed: {exc.code}")
                # Not ready until it succeeds: try again soon, not only at the next regular pass.
                self.schedule_once(min(self._check_interval_s, _STARTUP_RETRY_S), _PassDue())
            return
        self._repeats.succeeded("reconciliation")
        self._apply(decisions)
        self._clean_plans(self._last_view)
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

    def _gather_decisions(self) -> list[rec.Decision]:
        # Positions before plans: a fill between the reads then looks like extra stop, never like a gap.
        sent = time.time()
        positions = tuple(p for p in self._client.positions() if p.total > 0)
        self._facts.put_positions(positions, sent, "reconcile")
        pending = tuple(self._client.pending_orders())
        rows = self._journal.orders(states=_OPEN_STATES)
        details: dict[str, Order | None] = {}
        for row in rec.rows_to_look_up(rows, pending)[:_MAX_LOOKUPS_PER_PASS]:
            details[row.client_oid] = self._lookup(row)
        plans = self._pending_plans()
        view = rec.ExchangeView(pending=pending, details=details, plans=plans, positions=positions)
        self._last_view = view
        exchange_oids = {o.client_oid for o in pending} | {p.client_oid for p in plans}
        exchange_oids |= {f"ext{o.order_id}" for o in pending} | {f"ext{p.order_id}" for p in plans}
        journaled = frozenset(oid for oid in exchange_oids if oid and self._journal.order(oid) is not None)
        signal_rows = self._open_signal_rows()
        intents = rec.intents_from_journal(signal_rows, self._journal.entry_intents(signal_rows))
        intents = self._with_moved_stops(intents, positions)
        contracts = {p.symbol: self._client.contract(p.symbol) for p in positions if _key(p) in intents}
        return rec.reconcile(
            rows, view, now=time.time(), unknown_deadline_s=self._unknown_deadline_s, journaled_oids=journaled,
            intents=intents, adopted_keys=self._adopted_keys(positions), contracts=contracts, pos_mode=self._pos_mode,
            exchange_stops=not self._local_guard, take_profits=self._plans_supported,
        ) + rec.unfilled_signal_decisions(signal_rows)

    # --- clean plans: none of ours without its position, never more than the position -----------------------
    def _clean_plans(self, view: rec.ExchangeView | None = None, symbol: str | None = None) -> None:
        """Orphaned and oversized plans of ours (``rec.plan_hygiene_decisions``). A pass's snapshot (positions read
        before plans) only nominates coins; each is read again, plans first, before anything is cancelled."""
        if not self._plans_supported:
            return
        try:
            if view is not None:
                symbols = {d.symbol for d in self._hygiene(view.positions, view.plans)}
            else:
                symbols = {symbol} if symbol else set()
            for name in sorted(symbols):
                plans = tuple(self._client.plan_orders_pending("profit_loss", name))
                positions = tuple(p for p in self._client.position(name) if p.total > 0)
                self._apply(self._hygiene(positions, plans))
        except BitgetError as exc:  # the next pass tries again
            log.warning("plan clean-up failed: %s", exc.code)

    def _hygiene(self, positions: tuple[Position, ...], plans: tuple[PlanOrder, ...]) -> list[rec.Decision]:
        candidates = [p for p in plans if p.plan_type in rec.REDUCE_PLAN_TYPES]
        if not candidates:
            return []
        ours: dict[str, frozenset[Decimal]] = {}
        # Only plans without our client-id prefix need the journal (an entry's attached stop is named by the venue).
        for name in {plan.symbol for plan in candidates if not (plan.client_oid or "").startswith(CLIENT_OID_PREFIX)}:
            ours[name] = frozenset(
                Decimal(str(row.payload["stop_loss"])) for row in self._journal.orders(symbol=name)
                if row.leg.startswith("entry") and row.payload.get("attached_stop") and row.payload.get("stop_loss"))
        if self._reported_foreign is None:
            self._reported_foreign = {str(e.detail.get("order_id"))
                                      for e in self._journal.events("FOREIGN_PLAN", limit=100000)}
        reported = frozenset(self._reported_foreign)
        contracts = {p.symbol: self._client.contract(p.symbol) for p in positions if p.total > 0}
        return rec.plan_hygiene_decisions(positions, candidates, self._pos_mode, contracts=contracts,
                                          our_stop_prices=ours, reported_foreign=reported)

    def _cancel_plan(self, decision: rec.CancelPlan) -> None:
        with contextlib.suppress(OrderNotFound):  # gone already (fired, or went with its position)
            self._client.cancel_plan_order(decision.symbol, order_id=decision.order_id, plan_type=decision.plan_type)
        row = self._journal.order(decision.client_oid) if decision.client_oid else None
        if row is not None and not row.state.is_terminal:
            self._journal.set_order_state(row.client_oid, OrderState.CANCELED)
        self._journal.record_event("PLAN_CANCELLED", {"symbol": decision.symbol, "order_id": decision.order_id,
                                                      "client_oid": decision.client_oid,
                                                      "plan_type": decision.plan_type, "reason": decision.reason})
        log.info("%s %s plan %s cancelled: %s", decision.symbol, decision.plan_type, decision.order_id, decision.reason)

    def _pending_plans(self, symbol: str | None = None) -> tuple[PlanOrder, ...]:
        if not self._plans_supported:
            return ()  # the exchange has none to list (asking would fail every pass)
        plans = tuple(self._client.plan_orders_pending("profit_loss", symbol))
        return plans + tuple(self._client.plan_orders_pending("normal_plan", symbol)) if symbol is None else plans

    def _lookup(self, row: OrderRow) -> Order | None:
        """The order by its exchange id when known (an adopted order may have no client id of ours)."""
        if row.exchange_order_id is None:
            return self._client.resolve_unknown(row.symbol, row.client_oid)
        try:
            return self._client.order_detail(row.symbol, order_id=row.exchange_order_id)
        except OrderNotFound:
            return None

    def _open_signal_rows(self) -> dict[int, list[OrderRow]]:
        return {s.id: self._journal.orders(signal_id=s.id) for s in self._journal.open_signals()}

    def _with_moved_stops(self, intents: dict[tuple[str, str], rec.PositionIntent],
                          positions: Iterable[Position]) -> dict[tuple[str, str], rec.PositionIntent]:
        """The intents with, for each position whose stop was moved (break-even, a set-stop), that stop: what
        reconciliation places or checks is the stop the position should have now, not the signal's first one."""
        current = dict(intents)
        for position in positions:
            intent = current.get(_key(position))
            moved = moved_stop(self._journal, position) if intent is not None else None
            if intent is not None and moved is not None:
                current[_key(position)] = dataclasses.replace(intent, stop_price=moved)
        return current

    def _intents(self) -> dict[tuple[str, str], rec.PositionIntent]:
        rows = self._open_signal_rows()
        return rec.intents_from_journal(rows, self._journal.entry_intents(rows))

    def _adopted_keys(self, positions: tuple[Position, ...]) -> frozenset[str]:
        """Positions already reported as external, by this reconciliation or by the guard (whose events
        carry no key: one recorded after the position opened counts), so each is alerted once."""
        events = self._journal.events("EXTERNAL_POSITION", limit=100000)
        keys = {str(e.detail["key"]) for e in events if e.detail.get("key")}
        for position in positions:
            opened_s = (position.c_time or 0) / 1000
            if any(not e.detail.get("key") and (e.detail.get("symbol"), e.detail.get("hold_side")) == _key(position)
                   and e.ts >= opened_s for e in events):
                keys.add(rec.position_key(position))
        return frozenset(keys)

    def _protect(self, symbol: str, hold_side: PositionSide | None = None) -> None:
        """Right after a fill: the filled size gets its stop and the targets are re-split over it."""
        intents = self._intents()
        try:
            positions = [p for p in self._client.position(symbol) if p.total > 0]
            plans = list(self._pending_plans(symbol)) if positions else []
        except BitgetError as exc:
            log.warning("%s: position unreadable after a fill (%s); the next pass retries", symbol, exc.code)
            return
        intents = self._with_moved_stops(intents, positions)
        decisions: list[rec.Decision] = []
        for position in positions:
            intent = intents.get(_key(position))
            if intent is None or (hold_side is not None and position.hold_side != hold_side):
                continue
            decisions += rec.protection_decisions(position, intent, plans, self._client.contract(symbol),
                                                  self._pos_mode, exchange_stops=not self._local_guard,
                                                  take_profits=self._plans_supported)
        self._apply(decisions)

    def _watch_unprotected_entries(self) -> None:
        """Entries sent without an attached stop are watched closely: their fills need a stop at once."""
        watched = [row for row in self._journal.orders(states=_OPEN_STATES)
                   if row.leg.startswith("entry") and not row.payload.get("attached_stop", True)]
        for row in watched:
            self._resolve(row.client_oid, row.symbol)

    # --- applying decisions ----------------------------------------------------------------------------
    def _apply(self, decisions: list[rec.Decision]) -> None:
        filled: set[tuple[str, PositionSide | None]] = set()
        for decision in decisions:
            try:
                if isinstance(decision, rec.SetOrderState):
                    self._apply_state(decision)
                    if decision.leg.startswith("entry") and decision.newly_filled > 0:
                        row = self._journal.order(decision.client_oid)
                        side = as_position_side(row.payload.get("position_side")) if row is not None else None
                        filled.add((decision.symbol, side))
                elif isinstance(decision, rec.MarkNeverSent):
                    self._journal.set_order_state(decision.client_oid, OrderState.REJECTED, error=decision.reason)
                    self._journal.record_event("RECONCILE_NEVER_SENT", {"client_oid": decision.client_oid,
                                                                       "symbol": decision.symbol, "leg": decision.leg})
                    log.warning("%s %s (%s) never reached the exchange", decision.symbol, decision.leg,
                                decision.client_oid)
                elif isinstance(decision, rec.AdoptExternalOrder):
                    self._adopt_order(decision)
                elif isinstance(decision, rec.AdoptExternalPosition):
                    self._journal.record_event("EXTERNAL_POSITION", {
                        "symbol": decision.symbol, "hold_side": decision.hold_side, "size": str(decision.size),
                        "key": decision.key, "by": "reconciliation"})
                    self._notifier.notify("EXTERNAL_POSITION", f"{decision.symbol} {decision.hold_side} "
                                          f"{decision.size} was not opened by this bot (adopted, not managed)")
                elif isinstance(decision, (rec.PlaceStop, rec.ResizeStop)):
                    self._apply_stop(decision)
                elif isinstance(decision, rec.CloseUncovered):
                    self._close_uncovered(decision)
                elif isinstance(decision, (rec.PlaceTakeProfit, rec.ResizeTakeProfit)):
                    self._apply_take_profit(decision)
                elif isinstance(decision, rec.CancelPlan):
                    self._cancel_plan(decision)
                elif isinstance(decision, rec.ReportForeignPlan):
                    if self._reported_foreign is not None:
                        self._reported_foreign.add(decision.order_id)
                    self._journal.record_event("FOREIGN_PLAN", {
                        "symbol": decision.symbol, "order_id": decision.order_id, "plan_type": decision.plan_type,
                        "size": str(decision.size) if decision.size is not None else None,
                        "trigger_price": str(decision.trigger_price)})
                    self._notifier.notify("FOREIGN_PLAN", f"{decision.symbol} {decision.plan_type} at "
                                          f"{decision.trigger_price} (plan {decision.order_id}) was not placed by this "
                                          "bot and has no position; left as it is")
                elif isinstance(decision, rec.CloseSignal):
                    self._journal.set_signal_closed(decision.signal_id)
                    self._journal.record_event("RECONCILE_SIGNAL_CLOSED", {"signal_id": decision.signal_id,
                                                                           "symbol": decision.symbol})
            except BitgetError as exc:
                log.warning("reconcile decision %s failed: %s", type(decision).__name__, exc.code)
                symbol = getattr(decision, "symbol", None)
                if isinstance(exc, RateLimited) and isinstance(decision, (rec.ResizeStop, rec.ResizeTakeProfit)):
                    self.schedule_once(exc.retry_after or 0.2, _ProtectAgain(str(symbol)))
        for symbol, side in filled:
            # A fill may have grown the position past its stop: protect it now, not at the next pass.
            self._protect(symbol, side)

    def _apply_state(self, decision: rec.SetOrderState) -> None:
        self._journal.set_order_state(decision.client_oid, decision.state, exchange_order_id=decision.exchange_order_id,
                                      filled_size=decision.filled_size, avg_price=decision.avg_price)
        if decision.state is not decision.previous_state:
            self._journal.record_event("RECONCILE_STATE", {
                "client_oid": decision.client_oid, "symbol": decision.symbol, "leg": decision.leg,
                "from": decision.previous_state.value, "to": decision.state.value,
                "filled": str(decision.filled_size) if decision.filled_size is not None else None})

    def _adopt_order(self, decision: rec.AdoptExternalOrder) -> None:
        """Journal an order nobody here placed (so it is reported once and its state followed), and alert."""
        self._journal.record_intent(
            decision.journal_oid, signal_id=None, symbol=decision.symbol, leg="external", side=decision.side or "?",
            trade_side=decision.trade_side, order_type=decision.kind, size=decision.size, price=decision.price,
            reduce_only=decision.reduce_only, payload={"order_id": decision.order_id, "state": decision.state},
        )
        self._journal.set_order_state(decision.journal_oid, OrderState.ACCEPTED, exchange_order_id=decision.order_id)
        self._journal.record_event("EXTERNAL_ORDER", {"symbol": decision.symbol, "order_id": decision.order_id,
                                                      "client_oid": decision.client_oid, "kind": decision.kind,
                                                      "size": str(decision.size)})
        self._notifier.notify("EXTERNAL_ORDER", f"{decision.symbol} {decision.kind} {decision.side} {decision.size} "
                              f"(order {decision.order_id}) was not placed by this bot (adopted, not managed)")

    def _apply_stop(self, decision: rec.PlaceStop | rec.ResizeStop) -> None:
        if isinstance(decision, rec.ResizeStop):
            self._client.modify_tpsl_order(decision.symbol, order_id=decision.order_id,
                                           trigger_price=decision.trigger_price, size=decision.size)
            self._journal.record_event("RECONCILE_STOP_RESIZED", {"symbol": decision.symbol, "size": str(decision.size),
                                                                  "previous": str(decision.previous_size)})
            log.info("%s stop resized %s -> %s", decision.symbol, decision.previous_size, decision.size)
            return
        signal = self._journal.signal(decision.signal_id)
        if signal is None:
            return
        prefix = signal_oid_prefix(signal.channel, signal.message_id, signal_index=signal.index)
        taken = [r for r in self._journal.orders(signal_id=signal.id) if r.leg.startswith(rec.STOP_LEG)]
        leg = rec.STOP_LEG if not taken else f"{rec.STOP_LEG}{len(taken) + 1}"
        oid = prefix + leg

        def refused(exc: BitgetError) -> None:
            if not isinstance(exc, RateLimited):
                self._notifier.notify("STOP_REFUSED", f"{decision.symbol} stop {decision.trigger_price} for "
                                      f"{decision.size} refused: {exc.code}")

        placed = self._place_plan_intent(oid, signal.id, leg, "loss_plan", decision, on_refused=refused)
        if placed is None:
            return
        self._journal.record_event("RECONCILE_STOP_PLACED", {"symbol": decision.symbol, "size": str(decision.size),
                                                             "stop": str(decision.trigger_price)})
        log.info("%s stop %s placed for %s", decision.symbol, decision.trigger_price, decision.size)

    def _place_plan_intent(
        self,
        oid: str,
        signal_id: int,
        leg: str,
        plan_type: TpslPlanType,
        decision: rec.PlaceStop | rec.PlaceTakeProfit,
        *,
        on_refused: Callable[[BitgetError], None],
    ) -> PlacedOrder | None:
        """Journal the intent, then place one stop or take-profit plan the reconciliation asked for.

        None when it was not placed: already journaled, outcome unknown (stays SUBMITTED; the next pass finds it
        among the plans), or refused (journaled REJECTED and counted; a rate-limited one is tried again in a
        moment under a new leg, not at the next pass)."""
        metric_leg = "stop" if plan_type == "loss_plan" else "tp"
        hold = tpsl_hold_side(decision.hold_side, self._pos_mode)
        if not self._journal.record_intent(
            oid, signal_id=signal_id, symbol=decision.symbol, leg=leg, side=hold, trade_side=None,
            order_type=plan_type, size=decision.size, price=decision.trigger_price, reduce_only=True, payload={},
        ):
            return None
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_tpsl_order(TpslRequest(
                symbol=decision.symbol, plan_type=plan_type, trigger_price=decision.trigger_price, hold_side=hold,
                size=decision.size, client_oid=oid,
            ))
        except UnknownOutcome:
            return None
        except BitgetError as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=str(exc.code))
            self._metrics.order(metric_leg, "rejected")
            if isinstance(exc, RateLimited):
                self.schedule_once(exc.retry_after or 0.2, _ProtectAgain(decision.symbol))
            on_refused(exc)
            return None
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.order(metric_leg, "accepted")
        return placed

    def _close_uncovered(self, decision: rec.CloseUncovered) -> None:
        position = self._position(decision.symbol, decision.hold_side)
        if position is None:
            return
        reason = f"stop {decision.stop_price} already passed (mark {decision.mark}) with {decision.size} uncovered"
        self._close(position, min(decision.size, position.total), reason)
        self._journal.record_event("RECONCILE_UNCOVERED_CLOSED", {"symbol": decision.symbol, "size": str(decision.size),
                                                                  "stop": str(decision.stop_price),
                                                                  "mark": str(decision.mark)})
        self._notifier.notify("PROTECTIVE_CLOSE", f"{decision.symbol} {decision.hold_side}: {reason}; closed")

    def _apply_take_profit(self, decision: rec.PlaceTakeProfit | rec.ResizeTakeProfit) -> None:
        if isinstance(decision, rec.ResizeTakeProfit):
            self._client.modify_tpsl_order(decision.symbol, order_id=decision.order_id,
                                           trigger_price=decision.trigger_price, size=decision.size)
            self._journal.record_event("RECONCILE_TP_RESIZED", {"client_oid": decision.client_oid,
                                                                "size": str(decision.size),
                                                                "previous": str(decision.previous_size)})
            return
        oid = decision.client_oid

        def refused(exc: BitgetError) -> None:
            log.warning("take-profit %d on %s refused: %s", decision.step, decision.symbol, exc.code)

        self._place_plan_intent(oid, decision.signal_id, oid.rsplit("_", 1)[-1], "profit_plan", decision,
                                on_refused=refused)

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
            self._resolve(row.client_oid, row.symbol)

    def _replace_stop(self, position: Position, stop: Decimal, reason: str, *, break_even: bool = False) -> bool:
        """New stop first, then the old ones are cancelled: never a moment without a stop. False when the new
        stop could not be placed (the old one stays). The stop goes on the tick grid away from the entry."""
        try:
            stop = self._client.contract(position.symbol).round_price(
                stop, stop_rounding(stop, position.average_open_price))
        except BitgetError as exc:
            log.warning("%s: contract unreadable (%s); stop not moved to %s", position.symbol, exc.code, stop)
            return False
        mark = position.mark_price or position.average_open_price
        if not stop_is_valid(position.hold_side, stop, mark):
            self._notifier.notify("STOP_NOT_MOVED", f"{position.symbol}: stop {stop} is past the price {mark}")
            return True  # a request that can never succeed: nothing to retry
        if self._local_guard:
            set_local_stop(self._journal, position, stop, reason)
            self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                      "local": True, "break_even": break_even})
            log.info("%s %s local stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)
            return True
        current = self._stop_plans(position)
        old = [p for p in current if p.trigger_price != stop]
        if len(old) < len(current):  # already there: two readings of one post both asked, or an earlier try
            if not old:  # whose reply was lost placed it; then the old stops still go, and the move is told
                remember_moved_stop(self._journal, position, stop)
                return True
        elif not self._place_stop(position, stop, reason):
            return False
        for plan in old:
            try:
                self._client.cancel_plan_order(position.symbol, order_id=plan.order_id, plan_type=plan.plan_type)
            except BitgetError as exc:
                log.warning("old stop %s on %s not cancelled: %s", plan.order_id, position.symbol, exc.code)
        remember_moved_stop(self._journal, position, stop)
        self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                  "previous": str(old[0].trigger_price) if old else None,
                                                  "break_even": break_even})
        log.info("%s %s stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)
        return True

    def _place_stop(self, position: Position, stop: Decimal, reason: str, size: Decimal | None = None) -> bool:
        """A whole-position stop (``pos_loss``), or with ``size`` a stop plan for that part only."""
        hold = tpsl_hold_side(position.hold_side, self._pos_mode)
        oid = action_client_oid("stop", position.symbol, position.hold_side, stop, time.time())
        try:
            self._client.place_tpsl_order(TpslRequest(
                symbol=position.symbol, plan_type="pos_loss" if size is None else "loss_plan", trigger_price=stop,
                hold_side=hold, size=size, client_oid=oid,
            ))
        except BitgetError as exc:
            log.error("stop %s on %s refused: %s (%s)", stop, position.symbol, exc.code, reason)
            self._metrics.order("stop", "rejected")
            return False
        self._metrics.order("stop", "accepted")
        return True

    def _stop_plans(self, position: Position) -> list[PlanOrder]:
        if self._local_guard:
            return []  # no stop of ours is on the exchange
        try:
            plans = self._client.plan_orders_pending("profit_loss", position.symbol)
        except BitgetError:
            return []
        return stop_plans_for(position, plans, self._pos_mode)

    # --- protection --------------------------------------------------------------------------------
    def _repair_stop(self, message: RepairStop) -> None:
        """The part of the position no stop covers gets one: the whole position a position-level stop, a
        partly covered one (grown past its sized stop) a stop plan sized to the gap."""
        if self._local_guard:
            return  # the PositionGuard holds the stop itself
        position = self._position(message.symbol, message.hold_side)
        if position is None:
            return
        plans = self._stop_plans(position)
        gap = uncovered_size(position, plans, self._pos_mode)
        if gap <= 0:
            return
        stop = self._intended_stop(position)
        if stop is None or not stop_is_valid(position.hold_side, stop, position.mark_price or stop):
            stop = default_stop(position, self._default_stop_pct, self._client.contract(position.symbol))
        size = None if gap >= position.total else gap
        if self._place_stop(position, stop, message.reason, size=size):
            self._journal.record_event("STOP_REPAIRED", {"symbol": position.symbol, "stop": str(stop),
                                                         "size": str(size) if size is not None else "position"})

    def _intended_stop(self, position: Position) -> Decimal | None:
        """The stop the position should have now: where it was last moved (break-even, set-stop), else the stop
        its signal's entries carried, else the signal's reading; exact text, rounded away from the entry."""
        signals = self._journal.open_signals(position.symbol)
        intent = self._intents().get(_key(position))
        signal_stop = intent.stop_price if intent is not None else None
        if signal_stop is None:
            for row in reversed(signals):
                value, side = row.parsed.get("stop_loss"), row.parsed.get("side")
                if value is not None and side in (None, position.hold_side):
                    signal_stop = _exact_decimal(value)
                    break
        return current_stop(position, moved=moved_stop(self._journal, position), signal_stop=signal_stop,
                            contract=self._client.contract(position.symbol))

    def _protective_close(self, symbol: str, hold_side: PositionSide, reason: str) -> None:
        position = self._position(symbol, hold_side)
        if position is not None:
            # A crossed local stop is the position's stop doing its job; anything else is a protective close.
            self._close(position, None, reason, cause="stop" if reason.startswith("local stop") else "protective")
            self._journal.record_event("PROTECTIVE_CLOSE", {"symbol": symbol, "hold_side": hold_side,
                                                            "reason": reason})
            self._notifier.notify("PROTECTIVE_CLOSE", f"{symbol} {hold_side} closed: {reason}")

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
            self._close(position, None, f"panic: {reason}", cause="panic")
        self._journal.record_event("PANIC_CLOSE", {"positions": len(positions), "reason": reason})
        self._notifier.notify("PANIC_CLOSE", f"closed {len(positions)} position(s): {reason}")

    def _close(self, position: Position, size: Decimal | None, reason: str, cause: str = "protective") -> None:
        """``cause`` (trading.outcomes.CAUSES) is journaled with the order: the outcome notices name it.

        A close is reduce-only: it can only shrink the position. So when the journal cannot be written (disk
        full) it goes out anyway, and is journaled as soon as the journal can be written again."""
        oid = self._close_oid(position, cause)
        if oid is None:
            return
        request = close_request(position, self._pos_mode, oid, size)
        payload = {"reason": reason, "cause": cause}
        try:
            recorded = self._record_close_intent(request, payload)
        except JournalError as exc:
            log.error("%s close: the journal cannot be written (%s); sending it unjournaled", position.symbol, exc)
            self._send_unjournaled(request, payload)
            return
        if not recorded:
            return
        try:
            self._send(request, "close")
        except JournalError as exc:  # the intent is journaled, its state could not be: the client id dedupes
            log.error("%s close: the journal cannot be written (%s); sending it anyway", position.symbol, exc)
            self._send_unjournaled(request, payload)

    def _close_oid(self, position: Position, cause: str) -> str | None:
        """The client id of this close: deterministic per (cause, position, attempt), so a crash between send and
        reply is resolved by looking the close up, never by a second close. None while the previous attempt's
        outcome is still unknown (looked up again here; the next request or reconciliation pass decides it)."""
        key = rec.position_key(position)
        attempt, last = 1, None
        while (row := self._journal.order(action_client_oid("close", cause, key, attempt))) is not None:
            attempt, last = attempt + 1, row
        if last is not None and last.state in _OPEN_STATES:
            self._resolve(last.client_oid, last.symbol)
            again = self._journal.order(last.client_oid)
            if again is not None and again.state in _OPEN_STATES:
                log.warning("%s %s close (%s): the previous close %s is not decided yet; not sent again",
                            position.symbol, position.hold_side, cause, last.client_oid)
                return None
        return action_client_oid("close", cause, key, attempt)

    def _record_close_intent(self, request: OrderRequest, payload: dict[str, Any]) -> bool:
        return self._journal.record_intent(
            request.client_oid or "", signal_id=None, symbol=request.symbol, leg="close", side=request.side,
            trade_side=request.trade_side, order_type="market", size=request.size, price=None,
            reduce_only=True, payload=payload,
        )

    def _send_unjournaled(self, request: OrderRequest, payload: dict[str, Any]) -> None:
        """Send a reduce-only close the journal could not record; keep it in memory to journal it later."""
        try:
            self._client.place_order(request)
            result = "accepted"
        except DuplicateClientOid:
            result = "accepted"
        except UnknownOutcome:
            result = "unknown"
        except BitgetError as exc:
            result = "rejected"
            log.error("unjournaled close %s refused: %s", request.client_oid, exc.code)
        self._metrics.order("close", result)
        self._unjournaled_closes.append((request, payload))
        log.warning("close %s on %s sent (%s) without a journal entry; journaled when the disk allows",
                    request.client_oid, request.symbol, result)

    def _journal_unjournaled_closes(self) -> None:
        """Closes sent while the journal could not be written, journaled now (SUBMITTED: reconciliation then
        asks the exchange what became of each by client id, as for any sent order)."""
        while self._unjournaled_closes:
            request, payload = self._unjournaled_closes[0]
            try:
                self._record_close_intent(request, {**payload, "journaled_late": True})
                self._journal.set_order_state(request.client_oid or "", OrderState.SUBMITTED)
            except JournalError:
                return
            self._unjournaled_closes.pop(0)

    def _position(self, symbol: str, hold_side: PositionSide | None = None) -> Position | None:
        try:
            positions = self._client.position(symbol)
        except BitgetError as exc:
            log.warning("position %s unreadable: %s", symbol, exc.code)
            return None
        for position in positions:
            if position.total > 0 and (hold_side is None or position.hold_side == hold_side):
                return position
        return None

    # --- refusals found right before sending: journaled and counted like the RiskGate's ----------------
    def _refused_before_send(self, signal_id: int, reason: str, detail: str) -> None:
        record_refusal(self._journal, self._metrics, signal_id=signal_id, reason=reason, detail=detail)

    # --- requests from the PositionGuard (liquidation distance, first target filled) ------------------
    def _guard_request(self, message: ReducePosition | MoveStopToBreakEven) -> None:
        if isinstance(message, MoveStopToBreakEven):
            # The guard's first-target rule obeys move_sl_to_be; a retry (of a channel's explicit move too) always runs.
            if self._move_sl_on_tp1 or (message.symbol, message.hold_side) in self._break_even_tries:
                self._move_to_break_even(message)
            return
        position = self._position(message.symbol, message.hold_side)
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
                self._close(position, size, message.reason, cause="liquidation_reduce")
                self._journal.record_event("POSITION_REDUCED", {"symbol": position.symbol, "size": str(size),
                                                                "hold_side": position.hold_side,
                                                                "reason": message.reason})
                self._clean_plans(symbol=position.symbol)  # the reduce plans never sum to more than the rest

    def _move_to_break_even(self, message: MoveStopToBreakEven) -> None:
        """Stop to break-even; a move the exchange refused (the old stop stays) is asked again, a bounded number
        of times ``_BREAK_EVEN_RETRY_S`` apart, each refusal journaled."""
        key = (message.symbol, message.hold_side)
        position = self._position(message.symbol, message.hold_side)
        if position is None:
            self._break_even_tries.pop(key, None)
            return
        try:
            contract = self._client.contract(position.symbol)
            stop = break_even_stop(position.average_open_price, position.hold_side, self._be_buffer, contract)
            moved = self._replace_stop(position, stop, message.reason, break_even=True)
        except BitgetError as exc:
            log.warning("%s: break-even move failed (%s)", position.symbol, exc.code)
            moved = False
        if moved:
            self._break_even_tries.pop(key, None)
            return
        tries = self._break_even_tries.get(key, 0) + 1
        detail = {"symbol": message.symbol, "hold_side": message.hold_side, "attempt": tries,
                  "reason": message.reason}
        if tries > _BREAK_EVEN_RETRIES:
            self._break_even_tries.pop(key, None)
            self._journal.record_event("BREAK_EVEN_FAILED", detail)
            self._notifier.notify("STOP_NOT_MOVED", f"{message.symbol} {message.hold_side}: break-even stop refused "
                                  f"{tries} times; the previous stop stays")
            return
        self._break_even_tries[key] = tries
        self._journal.record_event("BREAK_EVEN_RETRY", detail)
        self.schedule_once(_BREAK_EVEN_RETRY_S * tries, message)


class _FollowUp:
    """What an exit asks of the rest of the order side (``trading.ports.OrderFollowUp``)."""

    def __init__(self, manager: OrderManager) -> None:
        self._manager = manager

    def resolve(self, client_oid: str, symbol: str) -> None:
        self._manager._resolve(client_oid, symbol)

    def clean_plans(self, symbol: str) -> None:
        self._manager._clean_plans(symbol=symbol)


def _exact_decimal(value: object) -> Decimal | None:
    """A price read back from a journaled reading: its text (a float from an older journal goes through its
    shortest repr, the best that is left of it)."""
    try:
        price = Decimal(value) if isinstance(value, str) else Decimal(repr(value))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return price if price.is_finite() else None


def _key(position: Position) -> tuple[str, str]:
    return position.symbol, position.hold_side


def _leg_label(leg: str) -> str:
    for label in ("entry", "tp", "stop", "close"):
        if leg.startswith(label):
            return label
    return "other"
